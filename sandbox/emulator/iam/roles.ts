import { randomBytes } from 'node:crypto';
import type { Role, SandboxState } from '../state.ts';
import type { Obj, TemplateRole } from './cloudformation.ts';
import { parsePolicy } from './policy.ts';

/**
 * Install a role as a template creates it: its trust policy (the principals it names, and the external
 * id a `sts:ExternalId` condition asks for), its inline policies and its managed policy attachments.
 */
function installRole(state: SandboxState, account: string, role: TemplateRole, partition = 'aws'): Role {
  const statements = role.assumeRolePolicyDocument.Statement;
  const trusted: string[] = [];
  let externalId: string | undefined;
  for (const statement of (Array.isArray(statements) ? statements : [statements]) as Obj[]) {
    if (statement?.Effect !== 'Allow') continue;
    const principal = statement.Principal as { AWS?: string | string[]; Service?: string | string[] } | undefined;
    for (const p of [principal?.AWS ?? [], principal?.Service ?? []].flat()) {
      const root = /^arn:aws[a-z-]*:iam::(\d{12}):root$/.exec(p);
      trusted.push(root?.[1] ?? p);
    }
    const condition = statement.Condition as { StringEquals?: Record<string, string> } | undefined;
    externalId ??= condition?.StringEquals?.['sts:ExternalId'];
  }
  const installed = state.putRole(account, role.name, trusted, externalId, partition);
  installed.arn = `arn:${partition}:iam::${account}:role${role.path}${role.name}`;
  installed.assumeRolePolicyDocument = JSON.stringify(role.assumeRolePolicyDocument);
  installed.maxSessionDuration = role.maxSessionDuration ?? 3600;
  for (const [name, document] of role.policies) {
    const text = JSON.stringify(document);
    parsePolicy(text);
    installed.inlinePolicies.set(name, text);
  }
  for (const arn of role.managedPolicyArns) {
    if (!state.managedPolicies.has(arn))
      throw new Error(`the sandbox does not know the managed policy ${arn} (role ${role.name}); grant the same in an inline policy`);
    installed.attachedPolicies.add(arn);
  }
  return installed;
}

/** Start a session of a role without going through sts:AssumeRole (Lambda hands its functions their role's credentials). */
function roleSession(
  state: SandboxState,
  role: Role,
  sessionName: string,
): { accessKeyId: string; secretAccessKey: string; sessionToken: string } {
  const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
  state.sessions.set(accessKeyId, {
    accessKeyId,
    accountId: role.accountId,
    roleArn: role.arn,
    sessionName,
    expiration: new Date(Date.now() + 12 * 3_600_000),
  });
  return { accessKeyId, secretAccessKey: randomBytes(20).toString('base64'), sessionToken: randomBytes(32).toString('base64') };
}

export { installRole, roleSession };
