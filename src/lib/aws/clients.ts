import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { ImagebuilderClient } from '@aws-sdk/client-imagebuilder';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import pLimit, { type LimitFunction } from 'p-limit';
import { ServiceClock, localClockReplaced } from '../core/clock.ts';
import { partitionOfRegion } from '../core/regions.ts';
import { cellKey } from '../core/cells.ts';
import { AssumeRoleError, AwsCallError, NotATargetAccountError, toFailure } from '../core/errors.ts';

/**
 * What the factory gives every client class it builds: region, adaptive retries, the shared connection pool,
 * the credentials (an assumed role's in another account), the endpoint; S3 clients also path-style addressing
 * when asked for (`forcePathStyle`, which other clients ignore).
 */
interface ServiceClientConfig {
  region: string;
  retryMode: 'adaptive';
  maxAttempts: number;
  requestHandler: NodeHttpHandler;
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  profile?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
}

/** A client class the factory can build: `new EC2Client(config)`, `new S3Client(config)`, … */
type ServiceClientClass<C extends object> = new (config: ServiceClientConfig) => C;

/** The client of a class from `built`, made with `make` and kept there the first time it is asked for. */
function builtOnce<C extends object>(built: Map<unknown, object>, Client: ServiceClientClass<C>, make: () => C): C {
  const existing = built.get(Client);
  if (existing !== undefined) return existing as C;
  const client = make();
  built.set(Client, client);
  return client;
}

/** The clients for one (account, region); each is built on first use. */
interface CellClients {
  readonly accountId: string;
  readonly region: string;
  readonly ec2: EC2Client;
  readonly imagebuilder: ImagebuilderClient;
  readonly ssm: SSMClient;
  /**
   * A client of another service for this cell (S3 for the export check, License Manager, Auto Scaling,
   * CloudFormation, AWS Batch and EMR for cleanup's in-use check, IAM for doctor), built on first use and kept. The caller names the class, so a
   * bundle carries an SDK client only when its code uses it.
   */
  client<C extends object>(Client: ServiceClientClass<C>): C;
}

/** The clients for the reconciler's own account and region (report bus, recheck queue). */
interface HomeClients {
  readonly eventBridge: EventBridgeClient;
  readonly sqs: SQSClient;
}

/**
 * The one place that builds AWS clients. Clients are cached per (account, region) for the life of the
 * factory (a Lambda container, a CLI run), each built on first use, and all of them share one keep-alive
 * connection pool; accounts other than the reconciler's own are reached through `sts:AssumeRole` on the
 * reconciler's role there, with the credentials cached until shortly before they expire. Every client uses
 * the SDK's adaptive retry. Calls are bounded per (account, region), where AWS meters them (EC2 "throttles
 * EC2 API requests for each AWS account on a per-Region basis",
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/throttling.html), by a limit that halves when a
 * call is throttled and grows back as calls succeed; and in all by a global limit.
 */
interface ClientFactory {
  /** The reconciler's own account (from configuration, else `sts:GetCallerIdentity`). */
  ownAccountId(): Promise<string>;
  /**
   * Clients for a cell; throws {@link AssumeRoleError} when the role cannot be assumed, and
   * {@link NotATargetAccountError} for an account outside `targetAccounts` (without trying).
   */
  forCell(accountId: string, region: string): Promise<CellClients>;
  /** Clients for the reconciler's own account and region. */
  home(): HomeClients;
  /**
   * A client of another service for the own account and region, built here with the factory's settings (retry,
   * connection pool, endpoint, call accounting) on first use and kept: IAM (doctor's simulator), DynamoDB (the
   * idempotency records), AWS Organizations (the reconcile functions). The caller names the client class, so a
   * bundle carries that SDK client only when its code uses it.
   */
  homeClient<C extends object>(Client: ServiceClientClass<C>): C;
  /** AWS calls sent so far (every command, pages included; retries of a command are not counted again). */
  callCount(): number;
  /** How many cells a run should work on at once: enough to keep the global limit of calls busy. */
  cellConcurrency(): number;
  /** AWS's clock, from the `Date` header of every response these clients received (src/lib/core/clock.ts). */
  serviceClock(): ServiceClock;
}

interface ClientFactoryOptions {
  accountId: string;
  region: string;
  targetRoleName: string;
  externalId: string | undefined;
  /** The only other accounts whose role may be assumed; undefined: any ({@link NotATargetAccountError} otherwise). */
  targetAccounts?: ReadonlySet<string> | undefined;
  /** Concurrent calls per (account, region), at most; throttling lowers it for a while. */
  concurrencyPerCell: number;
  /** Concurrent calls in all (default 64). */
  maxConcurrency?: number;
  sdkMaxAttempts: number;
  /** Refresh assumed credentials this many ms before they expire. */
  refreshMarginMs?: number;
  /** Name of the assumed-role session (shows in CloudTrail of the target account). */
  sessionName?: string;
  /** Base credentials for the own account; default: the SDK's default provider chain. */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** The clock, for credential expiry. */
  now?: () => number;
  /** The local clock the service clock's offset is measured against; default the machine's (core/clock.ts). */
  localNow?: () => number;
  /** A named profile for the own account's credentials (the CLI's --profile). */
  profile?: string | undefined;
  /** An explicit endpoint for every service (the CLI's --endpoint-url); default: the SDK's own settings. */
  endpoint?: string | undefined;
  /** Called once with every client built (the Lambda runtime's X-Ray tracing: Powertools Tracer). */
  onClient?: ((client: object) => void) | undefined;
  /** Address S3 buckets in the path (`<endpoint>/<bucket>/<key>`), as a local endpoint needs; default false. */
  s3ForcePathStyle?: boolean | undefined;
  /** The partition of the target roles' ARNs; default: the partition of `region` (partitions do not mix). */
  partition?: string | undefined;
}

interface CachedCredentials {
  promise: Promise<AwsCredentialIdentity>;
  expiresAt: number;
}

type Middlewared = {
  middlewareStack: {
    add: (middleware: never, options: { step: 'initialize' | 'finalizeRequest' | 'deserialize'; name: string; priority?: 'low' }) => void;
  };
};

/** The `Date` header of an HTTP response (@smithy/protocol-http's HttpResponse: lower-case header names). */
function dateHeaderOf(response: unknown): string | undefined {
  if (typeof response !== 'object' || response === null || !('headers' in response)) return undefined;
  const headers = response.headers;
  if (typeof headers !== 'object' || headers === null) return undefined;
  const date = (headers as Record<string, unknown>).date ?? (headers as Record<string, unknown>).Date;
  return typeof date === 'string' ? date : undefined;
}

/** A throttled attempt, by the same classification the report uses (src/lib/core/throttling.ts). */
function isThrottling(error: unknown): boolean {
  return toFailure(error).kind === 'throttled';
}

/**
 * A concurrency limit that adapts to throttling (additive increase, multiplicative decrease): a throttled
 * attempt halves it, and each run of as many successful attempts as the limit raises it by one, up to `max`.
 */
class AdaptiveLimit {
  private readonly limit: LimitFunction;
  private successes = 0;

  constructor(private readonly max: number) {
    this.limit = pLimit(max);
  }

  get concurrency(): number {
    return this.limit.concurrency;
  }

  run<T>(fn: () => Promise<T>): Promise<T> {
    return this.limit(fn);
  }

  throttled(): void {
    this.limit.concurrency = Math.max(1, Math.floor(this.limit.concurrency / 2));
    this.successes = 0;
  }

  succeeded(): void {
    if (this.limit.concurrency >= this.max) return;
    this.successes += 1;
    if (this.successes >= this.limit.concurrency) {
      this.limit.concurrency += 1;
      this.successes = 0;
    }
  }
}

/** One keep-alive connection pool for every client: calls to the same endpoint reuse connections. */
function sharedRequestHandler(maxSockets: number): NodeHttpHandler {
  const agent = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets };
  return new NodeHttpHandler({ httpAgent: new HttpAgent(agent), httpsAgent: new HttpsAgent(agent) });
}

function createClientFactory(options: ClientFactoryOptions): ClientFactory {
  const now = options.now ?? Date.now;
  const margin = options.refreshMarginMs ?? 5 * 60_000;
  const sessionName = options.sessionName ?? 'imagebuilder-reconciler';
  let calls = 0;
  let ownAccount: Promise<string> | undefined = options.accountId === '' ? undefined : Promise.resolve(options.accountId);
  const maxConcurrency = options.maxConcurrency ?? 64;
  const global = pLimit(maxConcurrency);
  const requestHandler = sharedRequestHandler(maxConcurrency);
  const limits = new Map<string, AdaptiveLimit>();
  const cells = new Map<string, CellClients>();
  const credentials = new Map<string, CachedCredentials>();
  const clock = new ServiceClock(options.localNow);

  const baseConfig = (region: string) => ({
    region,
    retryMode: 'adaptive' as const,
    maxAttempts: options.sdkMaxAttempts,
    requestHandler,
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    // where the sandbox replaced the machine's clock (src/lib/core/clock.ts), its Date headers are ahead of
    // the process's own clock once simulated time has been advanced: the SDK's skew correction, which then
    // marks every error response as corrected and retries it, is off there; the sandbox checks no signing time
    ...(localClockReplaced() ? { disableClockSkewCorrection: true } : {}),
  });

  /**
   * Count every command, and hold a slot of its (account, region) and then a global slot while a cell's
   * command runs; every attempt tells the (account, region) limit whether it was throttled.
   */
  const instrument = <C extends object>(client: C, limitKey: string | undefined): C => {
    const limit = limitKey === undefined ? undefined : limitFor(limitKey);
    const middleware = (next: (args: unknown) => Promise<unknown>) => (args: unknown) => {
      calls += 1;
      // STS and the home clients are not held back: a cell's call that holds a global slot may be waiting
      // for its credentials to be refreshed through STS, which must not wait for a slot in turn
      return limit === undefined ? next(args) : limit.run(() => global(() => next(args)));
    };
    const stack = (client as unknown as Middlewared).middlewareStack;
    stack.add(middleware as never, { step: 'initialize', name: 'reconcilerCallAccounting' });
    // AWS's clock: the Date header of each response, an error's too (src/lib/core/clock.ts)
    const serviceDate = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
      try {
        const out = await next(args);
        clock.observe(dateHeaderOf((out as { response?: unknown }).response));
        return out;
      } catch (error: unknown) {
        if (typeof error === 'object' && error !== null && '$response' in error) clock.observe(dateHeaderOf(error.$response));
        throw error;
      }
    };
    stack.add(serviceDate as never, { step: 'deserialize', name: 'reconcilerServiceClock' });
    if (limit !== undefined) {
      // inside the SDK's retry middleware (finalizeRequest, high priority): sees each attempt
      const attempts = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
        try {
          const out = await next(args);
          limit.succeeded();
          return out;
        } catch (error: unknown) {
          if (isThrottling(error)) limit.throttled();
          throw error;
        }
      };
      stack.add(attempts as never, { step: 'finalizeRequest', name: 'reconcilerAdaptiveLimit', priority: 'low' });
    }
    options.onClient?.(client);
    return client;
  };

  const limitFor = (key: string): AdaptiveLimit => {
    let limit = limits.get(key);
    if (limit === undefined) {
      limit = new AdaptiveLimit(options.concurrencyPerCell);
      limits.set(key, limit);
    }
    return limit;
  };

  const sts = instrument(new STSClient(baseConfig(options.region)), undefined);

  /**
   * Settings every SDK client otherwise looks up on its own in the environment and the shared config files
   * (FIPS and dual-stack endpoints, defaults mode, app id, auth scheme preference): looked up once, by the
   * STS client, and handed to the cell clients, which are built by the thousand.
   */
  let sdkSettings: Promise<Record<string, unknown>> | undefined;
  const resolveSdkSettings = (): Promise<Record<string, unknown>> => {
    sdkSettings ??= (async () => {
      const config = sts.config;
      const appId = await config.userAgentAppId();
      return {
        useFipsEndpoint: await config.useFipsEndpoint(),
        useDualstackEndpoint: await config.useDualstackEndpoint(),
        defaultsMode: typeof config.defaultsMode === 'function' ? await config.defaultsMode() : config.defaultsMode,
        authSchemePreference: await config.authSchemePreference(),
        ...(appId === undefined ? {} : { userAgentAppId: appId }),
      };
    })();
    return sdkSettings;
  };

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
  /** The clients homeClient built, by class. */
  const homeExtra = new Map<unknown, object>();

  return {
    ownAccountId: resolveOwnAccount,
    async forCell(accountId, region) {
      const own = await resolveOwnAccount();
      const key = cellKey(region, accountId);
      if (accountId !== own && options.targetAccounts !== undefined && !options.targetAccounts.has(accountId))
        throw new NotATargetAccountError(accountId);
      if (accountId !== own) await credentialsFor(accountId); // surface AssumeRole failures here, once per cell
      const settings = await resolveSdkSettings();
      const existing = cells.get(key);
      if (existing !== undefined) return existing;
      const config = {
        ...settings,
        ...baseConfig(region),
        ...(accountId === own ? {} : { credentials: () => credentialsFor(accountId) }),
      };
      // most cells need only EC2: a client is built when a cell first uses it
      let ec2: EC2Client | undefined;
      let imagebuilder: ImagebuilderClient | undefined;
      let ssm: SSMClient | undefined;
      const others = new Map<unknown, object>();
      const clients: CellClients = {
        accountId,
        region,
        get ec2() {
          ec2 ??= instrument(new EC2Client(config), key);
          return ec2;
        },
        get imagebuilder() {
          imagebuilder ??= instrument(new ImagebuilderClient(config), key);
          return imagebuilder;
        },
        get ssm() {
          ssm ??= instrument(new SSMClient(config), key);
          return ssm;
        },
        client: <C extends object>(Client: ServiceClientClass<C>): C =>
          builtOnce(others, Client, () =>
            instrument(new Client({ ...config, ...(options.s3ForcePathStyle === true ? { forcePathStyle: true } : {}) }), key),
          ),
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
    homeClient: <C extends object>(Client: ServiceClientClass<C>): C =>
      builtOnce(homeExtra, Client, () => instrument(new Client(baseConfig(options.region)), undefined)),
    callCount: () => calls,
    cellConcurrency: () => maxConcurrency,
    serviceClock: () => clock,
  };
}

export { AdaptiveLimit, createClientFactory };
export type { CellClients, ClientFactory, ClientFactoryOptions, HomeClients, ServiceClientClass, ServiceClientConfig };
