import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { ImagebuilderClient } from '@aws-sdk/client-imagebuilder';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import pLimit, { type LimitFunction } from 'p-limit';
import { partitionOfRegion } from '../arn.ts';
import { AssumeRoleError, AwsCallError } from '../errors.ts';

/** The clients for one (account, region). */
interface CellClients {
  readonly accountId: string;
  readonly region: string;
  readonly ec2: EC2Client;
  readonly imagebuilder: ImagebuilderClient;
  readonly ssm: SSMClient;
}

/** The clients for the reconciler's own account and region (report bus, recheck queue). */
interface HomeClients {
  readonly eventBridge: EventBridgeClient;
  readonly sqs: SQSClient;
}

/**
 * The one place that builds AWS clients. Clients are cached per (account, region); accounts other than
 * the reconciler's own are reached through `sts:AssumeRole` on the reconciler's role there, with the
 * credentials cached until shortly before they expire. Every client uses the SDK's adaptive retry, and
 * calls per (account, region) are bounded by a concurrency limit.
 */
interface ClientFactory {
  /** The reconciler's own account (from configuration, else `sts:GetCallerIdentity`). */
  ownAccountId(): Promise<string>;
  /** Clients for a cell; throws {@link AssumeRoleError} when the role cannot be assumed. */
  forCell(accountId: string, region: string): Promise<CellClients>;
  /** Clients for the reconciler's own account and region. */
  home(): HomeClients;
  /** AWS calls sent so far (every attempt of every command, pages included). */
  callCount(): number;
}

interface ClientFactoryOptions {
  accountId: string;
  region: string;
  targetRoleName: string;
  externalId: string | undefined;
  concurrencyPerCell: number;
  sdkMaxAttempts: number;
  /** Refresh assumed credentials this many ms before they expire. */
  refreshMarginMs?: number;
  /** Name of the assumed-role session (shows in CloudTrail of the target account). */
  sessionName?: string;
  /** Base credentials for the own account; default: the SDK's default provider chain. */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** The clock, for credential expiry. */
  now?: () => number;
  /** A named profile for the own account's credentials (the CLI's --profile). */
  profile?: string | undefined;
  /** An explicit endpoint for every service (the CLI's --endpoint-url); default: the SDK's own settings. */
  endpoint?: string | undefined;
  /** The partition of the target roles' ARNs; default: the partition of `region` (partitions do not mix). */
  partition?: string | undefined;
}

interface CachedCredentials {
  promise: Promise<AwsCredentialIdentity>;
  expiresAt: number;
}

type Middlewared = { middlewareStack: { add: (middleware: never, options: { step: 'initialize'; name: string }) => void } };

function createClientFactory(options: ClientFactoryOptions): ClientFactory {
  const now = options.now ?? Date.now;
  const margin = options.refreshMarginMs ?? 5 * 60_000;
  const sessionName = options.sessionName ?? 'imagebuilder-reconciler';
  let calls = 0;
  let ownAccount: Promise<string> | undefined = options.accountId === '' ? undefined : Promise.resolve(options.accountId);
  const limits = new Map<string, LimitFunction>();
  const cells = new Map<string, CellClients>();
  const credentials = new Map<string, CachedCredentials>();

  const baseConfig = (region: string) => ({
    region,
    retryMode: 'adaptive' as const,
    maxAttempts: options.sdkMaxAttempts,
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
  });

  /** Count every command and hold a concurrency slot of its (account, region) while it runs. */
  const instrument = <C extends object>(client: C, limitKey: string | undefined): C => {
    const limit = limitKey === undefined ? undefined : limitFor(limitKey);
    const middleware = (next: (args: unknown) => Promise<unknown>) => (args: unknown) => {
      calls += 1;
      return limit === undefined ? next(args) : limit(() => next(args));
    };
    (client as unknown as Middlewared).middlewareStack.add(middleware as never, {
      step: 'initialize',
      name: 'reconcilerCallAccounting',
    });
    return client;
  };

  const limitFor = (key: string): LimitFunction => {
    let limit = limits.get(key);
    if (limit === undefined) {
      limit = pLimit(options.concurrencyPerCell);
      limits.set(key, limit);
    }
    return limit;
  };

  const sts = instrument(new STSClient(baseConfig(options.region)), undefined);

  const assume = async (accountId: string): Promise<AwsCredentialIdentity> => {
    const roleArn = `arn:${options.partition ?? partitionOfRegion(options.region)}:iam::${accountId}:role/${options.targetRoleName}`;
    try {
      const out = await sts.send(
        new AssumeRoleCommand({
          RoleArn: roleArn,
          RoleSessionName: sessionName,
          ...(options.externalId === undefined ? {} : { ExternalId: options.externalId }),
        }),
      );
      const c = out.Credentials;
      if (c?.AccessKeyId === undefined || c.SecretAccessKey === undefined) {
        throw new Error('AssumeRole returned no credentials');
      }
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration,
      };
    } catch (error: unknown) {
      throw new AssumeRoleError(accountId, roleArn, error);
    }
  };

  /** Credentials for an account other than the own one, cached until near expiry. */
  const credentialsFor = (accountId: string): Promise<AwsCredentialIdentity> => {
    const cached = credentials.get(accountId);
    if (cached !== undefined && cached.expiresAt - margin > now()) return cached.promise;
    const promise = assume(accountId);
    const entry: CachedCredentials = { promise, expiresAt: Number.POSITIVE_INFINITY };
    credentials.set(accountId, entry);
    promise.then(
      (value) => {
        entry.expiresAt = value.expiration?.getTime() ?? now() + 15 * 60_000;
      },
      () => {
        // a failed AssumeRole is not cached: the next cell (or run) tries again
        if (credentials.get(accountId) === entry) credentials.delete(accountId);
      },
    );
    return promise;
  };

  const resolveOwnAccount = (): Promise<string> => {
    if (ownAccount === undefined) {
      ownAccount = sts.send(new GetCallerIdentityCommand({})).then(
        (out) => {
          if (out.Account === undefined) throw new Error('GetCallerIdentity returned no account');
          return out.Account;
        },
        (error: unknown) => {
          ownAccount = undefined;
          throw new AwsCallError('GetCallerIdentity', 'self', options.region, error);
        },
      );
    }
    return ownAccount;
  };

  let homeClients: HomeClients | undefined;

  return {
    ownAccountId: resolveOwnAccount,
    async forCell(accountId, region) {
      const own = await resolveOwnAccount();
      const key = `${accountId}/${region}`;
      if (accountId !== own) await credentialsFor(accountId); // surface AssumeRole failures here, once per cell
      const existing = cells.get(key);
      if (existing !== undefined) return existing;
      const config = {
        ...baseConfig(region),
        ...(accountId === own ? {} : { credentials: () => credentialsFor(accountId) }),
      };
      const clients: CellClients = {
        accountId,
        region,
        ec2: instrument(new EC2Client(config), key),
        imagebuilder: instrument(new ImagebuilderClient(config), key),
        ssm: instrument(new SSMClient(config), key),
      };
      cells.set(key, clients);
      return clients;
    },
    home() {
      homeClients ??= {
        eventBridge: instrument(new EventBridgeClient(baseConfig(options.region)), undefined),
        sqs: instrument(new SQSClient(baseConfig(options.region)), undefined),
      };
      return homeClients;
    },
    callCount: () => calls,
  };
}

export { createClientFactory };
export type { CellClients, ClientFactory, ClientFactoryOptions, HomeClients };
