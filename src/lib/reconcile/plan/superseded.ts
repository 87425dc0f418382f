import type { DesiredCell } from '../../core/desired.ts';
import type { Failure } from '../../core/errors.ts';
import type { Check, CheckName, Observation } from '../types.ts';

const SUPERSEDED_REASONS = {
  superseded: (arn: string) => `superseded: newer build ${arn} is distributed here; no rollback`,
  supersededUnknown: (f: Failure) => `cannot tell whether a newer build exists (${f.code}); not changing anything that could roll back`,
} as const;

/** Whether a newer build makes changes for this cell a rollback: its ARN, `unknown`, or undefined. */
function supersededFor(cell: DesiredCell, observation: Observation, currentValues: (string | undefined)[]): string | Failure | undefined {
  if (!observation.newerBuilds.ok) return observation.newerBuilds.error;
  for (const build of observation.newerBuilds.value) {
    if (build.amis[cell.key] !== undefined) return build.arn;
    const amis = Object.values(build.amis);
    if (currentValues.some((value) => value !== undefined && amis.includes(value))) return build.arn;
  }
  return undefined;
}

function supersededCheck(check: CheckName, subject: string, by: string | Failure): Check {
  return typeof by === 'string'
    ? { check, subject, result: 'skipped', reason: SUPERSEDED_REASONS.superseded(by) }
    : { check, subject, result: 'pending', reason: SUPERSEDED_REASONS.supersededUnknown(by) };
}

export { supersededCheck, supersededFor };
