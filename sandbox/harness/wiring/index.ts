import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { roleSession } from '../../emulator/iam/roles.ts';
import { AwsError } from '../../emulator/protocol/errors.ts';
import { partitionOf } from '../../emulator/partition.ts';
import type { SandboxEnv } from '../../emulator/server.ts';
import { deleteMessage, receiveMessages, sendMessage } from '../../emulator/services/sqs.ts';
import type { PublishedEvent, Queue } from '../../emulator/state.ts';
import { type Deployment, type FunctionDef, type Json, type Obj, isObj, ratePeriodMs, readDeployment } from './deployment.ts';
import { ASYNC_RETRY_WAITS_MS, type Invocation, type LambdaHandler, lambdaContext } from './lambda.ts';
import { matchesPattern, readForwarderPatterns } from './routing.ts';
import { Stack } from './stack.ts';

interface WiringOptions {
  /** serverless.yml of the deployment to wire. */
  serverlessYml: string;
  /** The account and region the reconciler is deployed to. */
  account: string;
  region: string;
  /** Environment overrides (on top of serverless.yml's). */
  environment?: Record<string, string> | undefined;
  /** Overrides of serverless.yml's params (`--param` at deploy time). */
  params?: Record<string, string> | undefined;
  /** Set the process environment the functions read (the config module's applyEnvironment). */
  applyEnvironment: (vars: Record<string, string>) => void;
  /** Regions (other than the reconciler's) where infra/region-forwarder.yaml is deployed. Default none. */
  forwardedRegions?: string[];
  /** The forwarder template; default infra/region-forwarder.yaml next to serverless.yml. */
  forwarderYml?: string;
  /**
   * Reserved concurrency per function, over serverless.yml's (as `aws lambda put-function-concurrency` sets it).
   */
  reservedConcurrency?: Record<string, number> | undefined;
  /** The account's concurrency quota, shared by the functions with no reserved concurrency (Lambda's default: 1,000). */
  accountConcurrency?: number | undefined;
}

/**
 * An execution environment: its own instance of the function's bundle (a fresh module graph, so module-level
 * state such as cached clients, credentials and idempotency stores is its own), reused by later invocations
 * while warm, one invocation at a time (AWS Lambda Developer Guide, "Understanding Lambda function scaling":
 * each concurrent request is served by a separate execution environment; an environment processes one
 * request at a time and is reused for later ones).
 */
interface Environment {
  /** `<function>#<n>`: the invocations it served name it. */
  id: string;
  handler: LambdaHandler;
  busy: boolean;
}

/** A request Lambda refused for want of concurrency (the Throttles metric), not an invocation. */
interface Throttle {
  function: string;
  trigger: Invocation['trigger'];
  at: string;
}

/**
 * Lambda's retries of a throttled asynchronous event: "the retry interval increases exponentially from 1
 * second after the first attempt to a maximum of 5 minutes", for up to the maximum event age, 6 hours by
 * default (AWS Lambda Developer Guide, "How Lambda handles errors and retries with asynchronous invocation":
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
 */
const THROTTLE_FIRST_WAIT_MS = 1_000;
const THROTTLE_MAX_WAIT_MS = 300_000;
const MAX_EVENT_AGE_MS = 6 * 3_600_000;
/** Lambda's default concurrency quota per account and region (Lambda Developer Guide, "Lambda quotas"). */
const ACCOUNT_CONCURRENCY = 1_000;

/**
 * Wire a deployment into the sandbox: create its queues, give its functions their environment, deliver
 * matching events to them (with Lambda's asynchronous retries and on-failure destination), and poll their
 * SQS sources (with partial batch failures and redrive).
 */
class Wiring {
  static instances = 0;
  readonly deployment: Deployment;
  readonly invocations: Invocation[] = [];
  onInvocation: ((invocation: Invocation) => void) | undefined;
  /** Requests refused for want of concurrency (retried as Lambda retries them; not in `invocations`). */
  readonly throttles: Throttle[] = [];
  /** The most invocations of each function that ran at once. */
  readonly peakConcurrency = new Map<string, number>();
  /** Each function's execution environments, warm or busy. */
  private readonly environments = new Map<string, Environment[]>();
  /** Environments each function has started, ever (its cold starts). */
  private readonly started = new Map<string, number>();
  /** Environments being started (they count against the concurrency while their bundle loads). */
  private readonly starting = new Map<string, number>();
  /** Loads run one at a time: each sets the process environment its bundle reads when it is evaluated. */
  private loading: Promise<unknown> = Promise.resolve();
  private poller: NodeJS.Timeout | undefined;
  private stopped = false;
  private inFlight = new Set<Promise<unknown>>();
  /** Failed or throttled asynchronous invocations waiting for Lambda's retry. */
  private retriesWaiting = 0;
  /** Batches each SQS event source has in flight, by `<function>/<queue>`. */
  private polling = new Map<string, number>();
  /** Each function's concurrency limit (reserved, or the account's unreserved pool), set when the wiring starts. */
  private limits = new Map<string, number | undefined>();
  private unreservedPool = ACCOUNT_CONCURRENCY;
  private readonly forwarderPatterns: Obj[];
  private functionEnvironment: (fn: FunctionDef) => Record<string, string> = () => ({});
  /** The environment every function shares (and the process keeps between loads). */
  private common: Record<string, string> = {};
  /** The deployment's queues, tables and roles in the sandbox. */
  private readonly stack: Stack;

  constructor(
    private readonly env: SandboxEnv,
    private readonly options: WiringOptions,
  ) {
    this.deployment = readDeployment(options.serverlessYml);
    this.forwarderPatterns =
      (options.forwardedRegions ?? []).length === 0
        ? []
        : readForwarderPatterns(options.forwarderYml ?? join(dirname(options.serverlessYml), 'infra', 'region-forwarder.yaml'));
    Object.assign(this.deployment.params, options.params ?? {});
    this.stack = new Stack(env, this.deployment, options);
  }

  /** The deployment's queues, by logical id. */
  get queues(): Stack['queues'] {
    return this.stack.queues;
  }

  /** The deployment's DynamoDB tables, by logical id. */
  get tables(): Stack['tables'] {
    return this.stack.tables;
  }

  /** The deployment's IAM roles in the sandbox, by logical id. */
  get roles(): Stack['roles'] {
    return this.stack.roles;
  }

  private resolve(value: Json): string {
    return this.stack.resolve(value);
  }

  /** Create queues, set the environment and load the function bundles. */
  async start(): Promise<void> {
    const { account, region } = this.options;
    this.stack.createQueues();
    this.stack.createTables();
    const vars: Record<string, string> = {};
    for (const [key, value] of Object.entries(this.deployment.environment)) vars[key] = this.resolve(value);
    const common = {
      ...vars,
      AWS_REGION: region,
      AWS_ENDPOINT_URL: this.env.url(),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
    };
    this.common = common;
    const roles = this.stack.installRoles();
    // each function runs with its execution role's credentials, as Lambda gives them (AWS Lambda Developer
    // Guide, "Defining Lambda function permissions with an execution role"; the runtime's environment
    // variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)
    this.functionEnvironment = (fn: FunctionDef) => {
      const role = roles.get(fn.roleLogicalId);
      if (role === undefined) throw new Error(`function ${fn.name}: serverless.yml defines no IAM role ${fn.roleLogicalId}`);
      const credentials = roleSession(this.env.state, role, `${this.deployment.service}-sandbox-${fn.name}`);
      const own: Record<string, string> = {};
      for (const [key, value] of Object.entries(fn.environment)) own[key] = this.resolve(value);
      return {
        ...common,
        ...own,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        AWS_SESSION_TOKEN: credentials.sessionToken,
        ...(this.options.environment ?? {}),
      };
    };
    // patterns may use ${param:…} (the ARN prefix filter)
    const resolveStrings = (value: Json): Json => {
      if (typeof value === 'string') return this.resolve(value);
      // `!Sub` in a pattern: CloudFormation resolves intrinsic functions inside the rule's EventPattern
      if (isObj(value) && typeof value['Fn::Sub'] === 'string' && Object.keys(value).length === 1) {
        return this.resolve(value['Fn::Sub'])
          .replace(/\$\{AWS::Partition\}/g, partitionOf(region))
          .replace(/\$\{AWS::Region\}/g, region)
          .replace(/\$\{AWS::AccountId\}/g, account);
      }
      if (Array.isArray(value)) return value.map(resolveStrings);
      if (isObj(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveStrings(v)]));
      return value;
    };
    for (const fn of this.deployment.functions) fn.eventPatterns = fn.eventPatterns.map((p) => resolveStrings(p) as Obj);
    for (const fn of this.deployment.functions) {
      fn.schedules = fn.schedules.map(({ expression }) => {
        const resolved = this.resolve(expression);
        return { expression: resolved, periodMs: ratePeriodMs(resolved, fn.name) };
      });
    }
    this.setLimits();
    await this.load();
    this.poller = setInterval(() => this.poll(), 50);
    this.poller.unref();
    for (const fn of this.deployment.functions) {
      fn.schedules.forEach((schedule, index) => {
        this.schedule(fn, schedule.periodMs, index + 1);
      });
    }
  }

  /**
   * Each function's concurrency: its reserved concurrency (the option's, else serverless.yml's), or none,
   * sharing the account's quota less what the others reserve (Lambda Developer Guide, "Configuring reserved
   * concurrency for a function").
   */
  private setLimits(): void {
    let reserved = 0;
    for (const fn of this.deployment.functions) {
      const raw = this.options.reservedConcurrency?.[fn.name] ?? fn.reservedConcurrency;
      const value = raw === undefined || raw === null ? undefined : Number(typeof raw === 'number' ? raw : this.resolve(raw));
      if (value !== undefined && (!Number.isInteger(value) || value < 0))
        throw new Error(`function ${fn.name}: reservedConcurrency must be a whole number of 0 or more, got ${String(raw)}`);
      this.limits.set(fn.name, value);
      reserved += value ?? 0;
    }
    this.unreservedPool = Math.max(0, (this.options.accountConcurrency ?? ACCOUNT_CONCURRENCY) - reserved);
  }

  /** Invocations of a function running now, its environments starting included. */
  private inUse(name: string): number {
    return (this.environments.get(name) ?? []).filter((e) => e.busy).length + (this.starting.get(name) ?? 0);
  }

  /** Whether one more invocation of the function may start now. */
  private hasCapacity(fn: FunctionDef): boolean {
    const limit = this.limits.get(fn.name);
    if (limit !== undefined) return this.inUse(fn.name) < limit;
    const unreserved = this.deployment.functions
      .filter((f) => this.limits.get(f.name) === undefined)
      .reduce((sum, f) => sum + this.inUse(f.name), 0);
    return unreserved < this.unreservedPool;
  }

  /**
   * An execution environment for one invocation, taken now: a warm idle one, else a new one (a cold start)
   * while the function's concurrency allows; `undefined` when it does not (the request is throttled).
   */
  private take(fn: FunctionDef): Promise<Environment> | undefined {
    if (!this.hasCapacity(fn)) return undefined;
    const warm = (this.environments.get(fn.name) ?? []).find((e) => !e.busy);
    if (warm !== undefined) {
      warm.busy = true;
      this.notePeak(fn.name);
      return Promise.resolve(warm);
    }
    this.starting.set(fn.name, (this.starting.get(fn.name) ?? 0) + 1);
    this.notePeak(fn.name);
    return this.loadEnvironment(fn)
      .then((environment) => {
        environment.busy = true;
        return environment;
      })
      .finally(() => this.starting.set(fn.name, (this.starting.get(fn.name) ?? 1) - 1));
  }

  /**
   * Two environments for a delivery and its duplicate (the `duplicateDeliveries: concurrent` fault): each
   * resolves once both are ready, so that the two invocations do run at the same time even when one of them
   * needs a cold start. The second is `undefined` when the function's concurrency does not allow it.
   */
  private takeTogether(fn: FunctionDef): [Promise<Environment> | undefined, Promise<Environment> | undefined] {
    const first = this.take(fn);
    const second = this.take(fn);
    const settled = Promise.allSettled([first, second]);
    return [first?.then((e) => settled.then(() => e)), second?.then((e) => settled.then(() => e))];
  }

  private notePeak(name: string): void {
    this.peakConcurrency.set(name, Math.max(this.peakConcurrency.get(name) ?? 0, this.inUse(name)));
  }

  /** Load the functions' bundles (default: all), one warm environment each, as the first cold start does. */
  private async load(names?: string[]): Promise<void> {
    for (const fn of this.deployment.functions) {
      if (names !== undefined && !names.includes(fn.name)) continue;
      await this.loadEnvironment(fn);
    }
  }

  /**
   * A new execution environment of a function: its bundle loaded again with the function's environment and
   * role credentials (read at load time, as on a cold start), registered idle.
   */
  private loadEnvironment(fn: FunctionDef): Promise<Environment> {
    // simulated time stands still while the bundle loads (and waits for the loads before it): see SandboxClock.hold
    const release = this.env.clock.hold();
    const loaded = this.loading.then(() => this.importBundle(fn)).finally(release);
    this.loading = loaded.catch(() => undefined);
    return loaded.then((handler) => {
      const list = this.environments.get(fn.name) ?? [];
      const count = (this.started.get(fn.name) ?? 0) + 1;
      this.started.set(fn.name, count);
      const environment: Environment = { id: `${fn.name}#${count}`, handler, busy: false };
      list.push(environment);
      this.environments.set(fn.name, list);
      return environment;
    });
  }

  private async importBundle(fn: FunctionDef): Promise<LambdaHandler> {
    const root = dirname(this.options.serverlessYml);
    const modulePath = join(root, `${fn.handler.slice(0, fn.handler.lastIndexOf('.'))}.mjs`);
    const exported = fn.handler.slice(fn.handler.lastIndexOf('.') + 1);
    let module: Record<string, unknown>;
    try {
      // functions read their environment (and credentials) when loaded, as on a cold start
      this.options.applyEnvironment(this.functionEnvironment(fn));
      // a fresh module instance per environment: the bundle holds every dependency, so nothing is shared
      Wiring.instances += 1;
      module = (await import(`${pathToFileURL(modulePath).href}?sandbox=${Wiring.instances}`)) as Record<string, unknown>;
    } catch (error: unknown) {
      throw new Error(`cannot load the ${fn.name} function from ${modulePath} (run npm run build first)`, { cause: error });
    } finally {
      // the process itself (the CLI and tests running in it) acts as the home account's administrator, as before
      // any function was loaded; each loaded function keeps the role credentials it read at load time
      this.options.applyEnvironment({
        ...this.common,
        AWS_ACCESS_KEY_ID: this.options.account,
        AWS_SECRET_ACCESS_KEY: 'sandbox',
        AWS_SESSION_TOKEN: '',
        ...(this.options.environment ?? {}),
      });
    }
    const handler = module[exported];
    if (typeof handler !== 'function') throw new Error(`${modulePath} exports no ${exported} function`);
    return handler as LambdaHandler;
  }

  /**
   * New execution environments for some functions (default: all), as Lambda starts after an update or when
   * it scales out: they load again, with fresh role credentials and nothing cached from earlier runs.
   */
  async coldStart(names?: string[]): Promise<void> {
    const unknown = (names ?? []).filter((name) => !this.deployment.functions.some((fn) => fn.name === name));
    if (unknown.length > 0) throw new Error(`serverless.yml defines no function ${unknown.join(', ')}`);
    await this.idle();
    for (const fn of this.deployment.functions) if (names === undefined || names.includes(fn.name)) this.environments.delete(fn.name);
    await this.load(names);
  }

  /** How many execution environments each function has started (its cold starts). */
  environmentCount(name: string): number {
    return this.started.get(name) ?? 0;
  }

  /**
   * An EventBridge schedule rule: every period of simulated time, the `Scheduled Event` EventBridge sends
   * (source aws.events, the rule's ARN in resources, empty detail), invoked asynchronously like any rule target.
   */
  private schedule(fn: FunctionDef, periodMs: number, index: number): void {
    const { account, region } = this.options;
    const ruleArn = `arn:${partitionOf(region)}:events:${region}:${account}:rule/${this.deployment.service}-sandbox-${fn.name}-schedule-${index}`;
    const fire = (): void => {
      if (this.stopped) return;
      const event = {
        version: '0',
        id: randomUUID(),
        'detail-type': 'Scheduled Event',
        source: 'aws.events',
        account,
        time: this.env.clock.iso(),
        region,
        resources: [ruleArn],
        detail: {},
      };
      this.track(this.deliverToTarget(fn, event, 'schedule'));
      this.env.clock.after(periodMs, fire);
    };
    this.env.clock.after(periodMs, fire);
  }

  /**
   * Deliver a published event to every function whose rule matches it: events on the default bus of the
   * deployment's account and region, and events of the regions where the forwarder stack is deployed that
   * one of its rules matches. A forwarded event keeps its source region
   * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html).
   */
  deliver(event: PublishedEvent): void {
    if (event.bus !== 'default' || event.account !== this.options.account) return;
    if (event.region !== this.options.region) {
      if (!(this.options.forwardedRegions ?? []).includes(event.region)) return;
      const envelope = {
        'detail-type': event.detailType,
        source: event.source,
        account: event.account,
        region: event.region,
        resources: event.resources,
        detail: event.detail,
      };
      if (!this.forwarderPatterns.some((pattern) => matchesPattern(pattern, envelope))) return;
    }
    const delay = this.env.faults.eventDelayMs(event.resources);
    if (delay > 0) {
      this.env.clock.after(delay, () => this.deliverNow(event));
      return;
    }
    this.deliverNow(event);
  }

  private deliverNow(event: PublishedEvent): void {
    const envelope = {
      version: '0',
      id: event.id,
      'detail-type': event.detailType,
      source: event.source,
      account: event.account,
      time: event.time,
      region: event.region,
      resources: event.resources,
      detail: event.detail,
    };
    for (const fn of this.deployment.functions) {
      if (!fn.eventPatterns.some((pattern) => matchesPattern(pattern, envelope))) continue;
      this.track(this.deliverToTarget(fn, envelope, 'eventbridge'));
    }
  }

  /** One event to one rule target: once, or twice under the `duplicateDeliveries` fault (the same event, same id). */
  private async deliverToTarget(fn: FunctionDef, event: unknown, trigger: Invocation['trigger']): Promise<void> {
    const mode = this.env.faults.settings.duplicateDeliveries;
    if (mode === 'off') return this.invokeAsync(fn, event, trigger);
    if (mode === 'sequential') {
      await this.invokeAsync(fn, event, trigger);
      return this.invokeAsync(fn, event, trigger, true);
    }
    const [first, second] = this.takeTogether(fn);
    await Promise.all([
      this.invokeAsync(fn, event, trigger, false, 1, undefined, 0, first),
      this.invokeAsync(fn, event, trigger, true, 1, undefined, 0, second),
    ]);
  }

  private track(promise: Promise<unknown>): void {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise));
  }

  /**
   * Lambda's asynchronous invocation: on an error, Lambda runs the function up to `maximumRetryAttempts` more
   * times, waiting one minute before the first retry and two minutes before the second (Lambda Developer
   * Guide, "Error handling and automatic retries in Lambda", asynchronous invocation), then sends the event
   * to the on-failure destination. The waits run on the sandbox clock, like a queue's delay: nothing is in
   * flight meanwhile, so `idle()` returns with the failure seen and the retry still to come. A throttled
   * event (no concurrency left) is not an attempt: it waits 1 s, doubling to 5 minutes, and is tried again
   * until it is 6 hours old, then goes to the on-failure destination (condition EventAgeExceeded).
   */
  private async invokeAsync(
    fn: FunctionDef,
    event: unknown,
    trigger: Invocation['trigger'],
    duplicate = false,
    attempt = 1,
    queuedAt = this.env.clock.now(),
    throttledWaitMs = 0,
    taken?: Promise<Environment>,
  ): Promise<void> {
    const outcome = await this.invoke(fn, trigger, event, attempt, duplicate, taken, taken === undefined);
    if (outcome === undefined) {
      const waitMs = throttledWaitMs === 0 ? THROTTLE_FIRST_WAIT_MS : Math.min(THROTTLE_MAX_WAIT_MS, throttledWaitMs * 2);
      if (this.env.clock.now() + waitMs - queuedAt > MAX_EVENT_AGE_MS) {
        this.toFailureDestination(fn, event, attempt - 1, 'EventAgeExceeded', 'the event was throttled until it was 6 hours old');
        return;
      }
      this.retriesWaiting += 1;
      this.env.clock.after(waitMs, () => {
        this.retriesWaiting -= 1;
        this.track(this.invokeAsync(fn, event, trigger, duplicate, attempt, queuedAt, waitMs));
      });
      return;
    }
    if (outcome.error === undefined) return;
    if (attempt <= fn.maximumRetryAttempts) {
      const waitMs = ASYNC_RETRY_WAITS_MS[Math.min(attempt, ASYNC_RETRY_WAITS_MS.length) - 1] ?? 120_000;
      this.retriesWaiting += 1;
      this.env.clock.after(waitMs, () => {
        this.retriesWaiting -= 1;
        this.track(this.invokeAsync(fn, event, trigger, duplicate, attempt + 1, queuedAt));
      });
      return;
    }
    this.toFailureDestination(fn, event, attempt, 'RetriesExhausted', outcome.error);
  }

  /** The on-failure destination's record of an event Lambda gave up on (Lambda Developer Guide, "Adding a destination"). */
  private toFailureDestination(fn: FunctionDef, event: unknown, attempts: number, condition: string, error: string): void {
    const queue = fn.onFailureQueueLogicalId === undefined ? undefined : this.queues.get(fn.onFailureQueueLogicalId);
    if (queue === undefined) return;
    const record = {
      version: '1.0',
      timestamp: this.env.clock.iso(),
      requestContext: { functionArn: fn.name, condition, approximateInvokeCount: attempts },
      requestPayload: event,
      responseContext: { functionError: 'Unhandled' },
      responsePayload: { errorMessage: error },
    };
    sendMessage(this.env.state, queue, JSON.stringify(record), 0, this.env.clock.now());
  }

  /**
   * Run one invocation in an execution environment: the one given (taken when the request was accepted), or
   * one taken now; `undefined` when the function has no concurrency left (throttled, counted in `throttles`).
   */
  private async invoke(
    fn: FunctionDef,
    trigger: Invocation['trigger'],
    event: unknown,
    attempt: number,
    duplicate = false,
    taken?: Promise<Environment>,
    takeNow = true,
  ): Promise<Invocation | undefined> {
    const environmentTaken = taken ?? (takeNow ? this.take(fn) : undefined);
    if (environmentTaken === undefined) {
      this.throttles.push({ function: fn.name, trigger, at: this.env.clock.iso() });
      return undefined;
    }
    const started = Date.now();
    const invocation: Invocation = {
      id: randomUUID(),
      function: fn.name,
      trigger,
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
      attempt,
      event,
      result: undefined,
      error: undefined,
      duplicate,
      environment: '',
    };
    let environment: Environment | undefined;
    try {
      environment = await environmentTaken;
      invocation.environment = environment.id;
      invocation.result = await environment.handler(
        event,
        lambdaContext(`${this.deployment.service}-sandbox-${fn.name}`, this.options.account, this.options.region),
      );
    } catch (error: unknown) {
      invocation.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    } finally {
      if (environment !== undefined) environment.busy = false;
    }
    invocation.durationMs = Date.now() - started;
    this.invocations.push(invocation);
    this.onInvocation?.(invocation);
    return invocation;
  }

  /**
   * Invoke a function synchronously, as `serverless invoke -f <name>` or Lambda's Invoke API with
   * InvocationType RequestResponse does: no retries, no destination; the caller gets the result or the error.
   */
  async invokeFunction(name: string, event: unknown): Promise<Invocation> {
    const fn = this.deployment.functions.find((f) => f.name === name);
    if (fn === undefined) throw new Error(`serverless.yml defines no function ${name}`);
    const run = this.invoke(fn, 'manual', event, 1).then(
      (invocation) =>
        invocation ?? {
          // Invoke answers 429 TooManyRequestsException, "Rate Exceeded." (Lambda API Reference, Invoke, Errors)
          id: randomUUID(),
          function: fn.name,
          trigger: 'manual' as const,
          startedAt: new Date().toISOString(),
          durationMs: 0,
          attempt: 1,
          event,
          result: undefined,
          error: 'TooManyRequestsException: Rate Exceeded.',
          duplicate: false,
          environment: '',
        },
    );
    this.track(run);
    return run;
  }

  /**
   * The SQS event source mappings: receive, invoke, delete what succeeded. Each source runs as many batches
   * at once as the function's concurrency allows (and its ScalingConfig's maximumConcurrency, when set); the
   * pollers read no batch they could not invoke (AWS Lambda Developer Guide, "Using Lambda with Amazon SQS",
   * scaling: "Lambda starts processing ... batches at a time" as concurrency allows, up to maximumConcurrency).
   */
  private poll(): void {
    for (const fn of this.deployment.functions) {
      for (const source of fn.sqs) {
        const queue = this.queues.get(source.queueLogicalId);
        const key = `${fn.name}/${source.queueLogicalId}`;
        if (queue === undefined) continue;
        while ((this.polling.get(key) ?? 0) < (source.maximumConcurrency ?? Number.POSITIVE_INFINITY) && this.hasCapacity(fn)) {
          if (!this.pollBatch(fn, source, queue, key)) break;
        }
      }
    }
  }

  /** Receive one batch and invoke the function with it; false when the queue had nothing visible. */
  private pollBatch(fn: FunctionDef, source: FunctionDef['sqs'][number], queue: Queue, key: string): boolean {
    const messages = receiveMessages(this.env.state, queue, source.batchSize, queue.visibilityTimeout, this.env.clock.now());
    if (messages.length === 0) return false;
    const taken = this.take(fn);
    if (taken === undefined) throw new Error(`the ${fn.name} function had concurrency a moment ago and has none now`);
    const event = {
      Records: messages.map((m) => ({
        messageId: m.messageId,
        receiptHandle: m.receiptHandle ?? '',
        body: m.body,
        attributes: {
          ApproximateReceiveCount: String(m.receiveCount),
          SentTimestamp: String(m.sentAt),
          SenderId: this.options.account,
          ApproximateFirstReceiveTimestamp: String(m.firstReceivedAt ?? m.sentAt),
        },
        messageAttributes: {},
        md5OfBody: m.md5,
        eventSource: 'aws:sqs',
        eventSourceARN: queue.arn,
        awsRegion: queue.region,
      })),
    };
    this.polling.set(key, (this.polling.get(key) ?? 0) + 1);
    const failedIn = (invocation: Invocation | undefined): Set<string> => {
      // an invocation that failed as a whole (or was throttled) fails every message of its batch
      if (invocation === undefined || invocation.error !== undefined) return new Set(messages.map((m) => m.messageId));
      const result = invocation.result as { batchItemFailures?: { itemIdentifier: string }[] } | undefined;
      return new Set(source.reportBatchItemFailures ? (result?.batchItemFailures ?? []).map((f) => f.itemIdentifier) : []);
    };
    const settle = (invocation: Invocation | undefined): void => {
      const failed = failedIn(invocation);
      for (const m of messages) {
        if (failed.has(m.messageId)) continue; // visible again after the visibility timeout
        try {
          deleteMessage(queue, m.receiptHandle);
        } catch (error: unknown) {
          // a message already moved to the dead-letter queue has no valid receipt handle any more
          if (!(error instanceof AwsError)) throw error;
        }
      }
    };
    /** The duplicate delivery of the batch: a copy its function failed stays in the queue, to be received again. */
    const settleCopy = (invocation: Invocation | undefined): void => {
      const failed = failedIn(invocation);
      const visibleAt = this.env.clock.now() + queue.visibilityTimeout * 1000;
      for (const m of messages) {
        if (!failed.has(m.messageId) || queue.messages.some((q) => q.messageId === m.messageId)) continue;
        queue.messages.push({ ...m, receiptHandle: undefined, visibleAt });
      }
    };
    const mode = this.env.faults.settings.duplicateDeliveries;
    // the concurrent copy starts with the first (see takeTogether)
    const copy = mode === 'concurrent' ? this.take(fn) : undefined;
    const bothReady = Promise.allSettled([taken, copy]);
    const together = (e: Promise<Environment>) => e.then((x) => bothReady.then(() => x));
    const run =
      mode === 'off'
        ? this.invoke(fn, 'sqs', event, 1, false, taken).then(settle)
        : mode === 'sequential'
          ? this.invoke(fn, 'sqs', event, 1, false, taken)
              .then(settle)
              .then(() => this.invoke(fn, 'sqs', event, 1, true))
              .then(settleCopy)
          : Promise.all([
              this.invoke(fn, 'sqs', event, 1, false, together(taken)),
              this.invoke(fn, 'sqs', event, 1, true, copy, false),
            ]).then(([first, second]) => {
              settle(first);
              settleCopy(second);
            });
    this.track(run.finally(() => this.polling.set(key, (this.polling.get(key) ?? 1) - 1)));
    return true;
  }

  /** Whether any invocation runs or waits for its retry, or any queue a function consumes still holds messages. */
  busy(): boolean {
    if (this.inFlight.size > 0 || this.retriesWaiting > 0) return true;
    return this.deployment.functions.some((fn) =>
      fn.sqs.some((source) => (this.queues.get(source.queueLogicalId)?.messages.length ?? 0) > 0),
    );
  }

  /** Wait until no invocation is running. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  stop(): void {
    this.stopped = true;
    if (this.poller !== undefined) clearInterval(this.poller);
  }
}

export { Wiring };
export type { Deployment, FunctionDef, Invocation };
