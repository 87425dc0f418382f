import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SchemaRef } from '@smithy/types';
import { NormalizedSchema } from '@smithy/core/schema';
import type { SandboxClock } from './clock.ts';
import type { Faults } from './faults.ts';
import { type Authorization, authorize } from './iam/authorize.ts';
import { AwsError } from './protocol/errors.ts';
import { ec2Error, ec2Response, parseQueryInput, queryError, queryResponse } from './protocol/xml.ts';
import { s3Error } from './services/s3.ts';
import type { PublishedEvent, SandboxState } from './state.ts';

/** What every operation handler receives about its request. */
interface Ctx {
  account: string;
  region: string;
  service: string;
  operation: string;
  requestId: string;
  accessKeyId: string | undefined;
  env: SandboxEnv;
  /** The IAM authorizations evaluated for this request (assumed-role callers only). */
  authorizations: Authorization[];
}

/** The sandbox as its services see it. */
interface SandboxEnv {
  state: SandboxState;
  clock: SandboxClock;
  faults: Faults;
  /** Publish an event on an account's bus in a region (rules in the wiring react to it). */
  publish: (event: Omit<PublishedEvent, 'id' | 'time'>) => void;
  url: () => string;
}

type Handler = (ctx: Ctx, input: Record<string, unknown>) => unknown;

/**
 * The context of a call the sandbox makes to itself (Image Builder acting in EC2, scenario setup): as the
 * given account and region, with no access key and no faults applied.
 */
function systemCtx(env: SandboxEnv, account: string, region: string, service: string, operation: string): Ctx {
  return { account, region, service, operation, requestId: randomUUID(), accessKeyId: undefined, env, authorizations: [] };
}

/** Wrap a typed handler; its input is the SDK input type the schema describes. */
function op<I>(fn: (ctx: Ctx, input: I) => unknown): Handler {
  return fn as unknown as Handler;
}

interface ServiceDef {
  /** The SigV4 signing name. */
  name: string;
  protocol: 'ec2' | 'query' | 'json' | 'rest-json' | 'rest-xml';
  /** rest-xml (S3): the operation and input of a request, from its method, path and query; undefined: none. */
  route?: (method: string, url: URL) => { operation: string; input: Record<string, unknown> } | undefined;
  /** The JSON protocol's version (its Content-Type, `application/x-amz-json-<version>`); default 1.1. */
  jsonVersion?: '1.0' | '1.1';
  /** The SDK client module: its `<Operation>$` exports are the schemas. */
  schemas: Record<string, unknown>;
  /** awsQuery response namespace. */
  namespace?: string;
  handlers: Record<string, Handler>;
}

/** A request as the log sees it (the demo narrates from it; tests count calls). */
interface RequestRecord {
  time: string;
  service: string;
  operation: string;
  account: string;
  region: string;
  status: number;
  errorCode: string | undefined;
  /** The role of an assumed-role caller (undefined: the account itself or the sandbox). */
  principal: string | undefined;
  /** What IAM evaluated for the request (the permission proof reads these). */
  authorizations: Authorization[];
}

/** What a rest-xml handler answers: status (default 200), headers and body. */
interface RestReply {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
}

type ControlHandler = (method: string, path: string, body: unknown) => unknown;

/** What a control handler answers that is not JSON (the harness's live report page): sent as it is. */
class ControlPage {
  constructor(
    readonly contentType: string,
    readonly body: string,
  ) {}
}

const CREDENTIAL = /Credential=([^/,\s]+)\/\d{8}\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request/;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function toJsonSafe(value: unknown): unknown {
  if (value instanceof Date) return value.getTime() / 1000;
  if (value instanceof Map) return Object.fromEntries([...value.entries()].map(([k, v]) => [k, toJsonSafe(v)]));
  if (Array.isArray(value)) return value.map(toJsonSafe);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, toJsonSafe(v)]),
    );
  }
  return value;
}

function operationSchema(service: ServiceDef, operation: string): [SchemaRef, SchemaRef] {
  const schema = service.schemas[`${operation}$`];
  if (!Array.isArray(schema)) throw new AwsError('InvalidAction', `The action ${operation} is not valid for this web service.`);
  return [schema[4] as SchemaRef, schema[5] as SchemaRef];
}

/** rest-json routes, from the schemas' http traits: "METHOD /Path" → operation. */
function restRoutes(service: ServiceDef): Map<string, string> {
  const routes = new Map<string, string>();
  for (const [key, value] of Object.entries(service.schemas)) {
    if (!key.endsWith('$') || !Array.isArray(value) || value[0] !== 9) continue;
    const traits = value[3] as { http?: [string, string, number] } | 0;
    if (traits !== 0 && traits.http !== undefined) routes.set(`${traits.http[0]} ${traits.http[1]}`, key.slice(0, -1));
  }
  return routes;
}

/** A rest-json route: exact, or with `{label}` path segments (`/tags/{resourceArn}`), whose values are decoded. */
function matchRoute(
  routes: Map<string, string> | undefined,
  method: string,
  path: string,
): { operation: string; labels: Record<string, string> } | undefined {
  const exact = routes?.get(`${method} ${path}`);
  if (exact !== undefined) return { operation: exact, labels: {} };
  for (const [key, operation] of routes ?? []) {
    const [m, pattern = ''] = key.split(' ');
    if (m !== method || !pattern.includes('{')) continue;
    const names: string[] = [];
    const re = new RegExp(
      `^${pattern.replace(/\{(\w+)\+?\}/g, (_all: string, name: string) => {
        names.push(name);
        return '([^?]+)';
      })}$`,
    );
    const match = re.exec(path);
    if (match !== null)
      return { operation, labels: Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(match[i + 1] ?? '')])) };
  }
  return undefined;
}

class SandboxServer {
  private server: Server | undefined;
  private readonly services = new Map<string, ServiceDef>();
  private readonly routes = new Map<string, Map<string, string>>();
  readonly requests: RequestRecord[] = [];
  onRequest: ((record: RequestRecord) => void) | undefined;
  /** TCP connections accepted so far (keep-alive reuses them; a client that opens one per call shows here). */
  connections = 0;
  /** AWS requests being answered right now, and the most at once since {@link resetPeak}. */
  inFlight = 0;
  peakInFlight = 0;

  constructor(
    private readonly env: SandboxEnv,
    services: ServiceDef[],
    private readonly control: ControlHandler,
  ) {
    for (const service of services) {
      this.services.set(service.name, service);
      if (service.protocol === 'rest-json') this.routes.set(service.name, restRoutes(service));
    }
  }

  async listen(port: number, host = '127.0.0.1'): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
    this.server.on('connection', () => {
      this.connections += 1;
    });
    // AWS endpoints keep idle connections open for about a minute, so SDK clients reuse them. A short
    // keepAliveTimeout makes the server close each idle socket before the client's next call, and the client
    // opens a new connection (and, against AWS, a new TLS handshake) per request. headersTimeout must exceed it.
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(port, host, () => resolve());
    });
    const address = this.server.address() as AddressInfo;
    return `http://${host}:${address.port}`;
  }

  /** Start counting the peak of concurrent requests afresh. */
  resetPeak(): void {
    this.peakInFlight = this.inFlight;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://sandbox');
    if (url.pathname.startsWith('/_sandbox/')) {
      this.controlRequest(req.method ?? 'GET', url.pathname, body, res);
      return;
    }
    const auth = CREDENTIAL.exec(req.headers.authorization ?? '');
    const accessKeyId = auth?.[1];
    const region = auth?.[2] ?? 'us-east-1';
    const serviceName = auth?.[3] ?? (req.headers['x-amz-target'] === undefined ? 'ec2' : 'events');
    this.inFlight += 1;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    res.once('close', () => {
      this.inFlight -= 1;
    });
    const service = this.services.get(serviceName);
    const requestId = randomUUID();
    const ctx: Ctx = {
      account: this.env.state.accountFor(accessKeyId),
      region,
      service: serviceName,
      operation: '',
      requestId,
      accessKeyId,
      env: this.env,
      authorizations: [],
    };
    if (service === undefined) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `the sandbox does not model the service "${serviceName}"` }));
      return;
    }
    const contentType = String(req.headers['content-type'] ?? '');
    const isQuery =
      service.protocol === 'ec2' ||
      service.protocol === 'query' ||
      (service.name === 'sqs' && contentType.includes('x-www-form-urlencoded'));
    const flavor = service.protocol === 'ec2' ? 'ec2' : 'query';
    try {
      if (isQuery) {
        const params = new Map(new URLSearchParams(body).entries());
        ctx.operation = params.get('Action') ?? '';
        const [input, output] = operationSchema(service, ctx.operation);
        const parsed = parseQueryInput(params, input, flavor);
        const result = await this.invoke(service, ctx, parsed);
        const xml =
          flavor === 'ec2'
            ? ec2Response(ctx.operation, result, output, requestId)
            : queryResponse(ctx.operation, result, output, service.namespace ?? '', requestId);
        this.reply(res, ctx, 200, 'text/xml', xml);
      } else if (service.protocol === 'rest-xml') {
        const routed = service.route?.(req.method ?? 'GET', url);
        if (routed === undefined)
          throw new AwsError(
            'MethodNotAllowed',
            `The specified method is not allowed against this resource: ${req.method ?? ''} ${url.pathname}`,
            405,
          );
        ctx.operation = routed.operation;
        const header = (name: string) => (req.headers[name] === undefined ? undefined : String(req.headers[name]));
        const input = { ...routed.input, Body: body, ContentType: header('content-type'), ContentEncoding: header('content-encoding') };
        const result = (await this.invoke(service, ctx, input)) as RestReply;
        this.reply(
          res,
          ctx,
          result.status ?? 200,
          result.headers?.['Content-Type'] ?? 'application/xml',
          req.method === 'HEAD' ? '' : (result.body ?? ''),
          undefined,
          result.headers ?? {},
        );
      } else if (service.protocol === 'json' || service.name === 'sqs') {
        const target = String(req.headers['x-amz-target'] ?? '');
        ctx.operation = target.slice(target.indexOf('.') + 1);
        operationSchema(service, ctx.operation);
        const parsed = body === '' ? {} : (JSON.parse(body) as Record<string, unknown>);
        const result = await this.invoke(service, ctx, parsed);
        this.reply(res, ctx, 200, `application/x-amz-json-${service.jsonVersion ?? '1.1'}`, JSON.stringify(toJsonSafe(result ?? {})));
      } else {
        const found = matchRoute(this.routes.get(service.name), req.method ?? 'GET', url.pathname);
        if (found === undefined)
          throw new AwsError('InvalidRequestException', `no such operation: ${req.method ?? ''} ${url.pathname}`, 404);
        const route = found.operation;
        ctx.operation = route;
        const [input] = operationSchema(service, route);
        const parsed: Record<string, unknown> = body === '' ? {} : (JSON.parse(body) as Record<string, unknown>);
        for (const [name, member] of NormalizedSchema.of(input).structIterator()) {
          const traits = member.getMergedTraits();
          const query = traits.httpQuery as string | undefined;
          const value = query === undefined ? undefined : url.searchParams.get(query);
          if (value !== null && value !== undefined)
            parsed[name] = member.isNumericSchema() ? Number(value) : member.isBooleanSchema() ? value === 'true' : value;
          if (traits.httpLabel !== undefined && found.labels[name] !== undefined) parsed[name] = found.labels[name];
        }
        const result = await this.invoke(service, ctx, parsed);
        this.reply(res, ctx, 200, 'application/json', JSON.stringify(toJsonSafe({ requestId, ...(result as object) })));
      }
    } catch (error: unknown) {
      const aws =
        error instanceof AwsError
          ? error
          : error instanceof SyntaxError
            ? new AwsError('SerializationException', `the request body is not valid JSON: ${error.message}`)
            : new AwsError('InternalError', error instanceof Error ? error.message : String(error), 500);
      if (!(error instanceof AwsError) && !(error instanceof SyntaxError)) console.error('sandbox internal error', error);
      if (service.protocol === 'rest-xml') {
        this.reply(res, ctx, aws.status, 'application/xml', req.method === 'HEAD' ? '' : s3Error(aws, requestId), aws.code);
      } else if (isQuery) {
        this.reply(res, ctx, aws.status, 'text/xml', flavor === 'ec2' ? ec2Error(aws, requestId) : queryError(aws, requestId), aws.code);
      } else if (service.protocol === 'json' || service.name === 'sqs') {
        const body = { __type: aws.code, message: aws.message, ...(aws.fields === undefined ? {} : (toJsonSafe(aws.fields) as object)) };
        this.reply(res, ctx, aws.status, `application/x-amz-json-${service.jsonVersion ?? '1.1'}`, JSON.stringify(body), aws.code, {
          'x-amzn-query-error': `${aws.code};Sender`,
        });
      } else {
        this.reply(res, ctx, aws.status, 'application/json', JSON.stringify({ message: aws.message }), aws.code, {
          'x-amzn-errortype': aws.code,
        });
      }
    }
  }

  private async invoke(service: ServiceDef, ctx: Ctx, input: Record<string, unknown>): Promise<unknown> {
    const handler = service.handlers[ctx.operation];
    if (handler === undefined) {
      throw new AwsError(
        service.protocol === 'ec2' ? 'InvalidAction' : 'UnsupportedOperation',
        `the sandbox does not model ${service.name}:${ctx.operation}`,
      );
    }
    // expired session credentials are refused before anything else: "The security token included in the
    // request is expired" (STS and the services answer ExpiredToken: AWS General Reference, "Common errors";
    // IAM User Guide, "Temporary security credentials": "After temporary security credentials expire, they
    // cannot be reused")
    const session = ctx.accessKeyId === undefined ? undefined : this.env.state.sessions.get(ctx.accessKeyId);
    if (session !== undefined && session.expiration.getTime() <= Date.now())
      throw new AwsError('ExpiredToken', 'The security token included in the request is expired', service.protocol === 'query' ? 400 : 403);
    // IAM first: a refused request reaches neither the fault injection nor the handler
    authorize(ctx, input);
    // EC2's DryRun: "Checks whether you have the required permissions for the action, without actually making
    // the request, and provides an error response. If you have the required permissions, the error response is
    // DryRunOperation. Otherwise, it is UnauthorizedOperation" (EC2 API Reference, the DryRun parameter of every
    // action that has one); DryRunOperation answers HTTP 412 (EC2 API Reference, "Error codes": "The user has
    // the required permissions, so the request would have succeeded, but the DryRun parameter was used")
    if (service.protocol === 'ec2' && input.DryRun === true)
      throw new AwsError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
    await this.env.faults.before(service.name, ctx.operation, ctx.account, ctx.region, this.env.clock);
    return handler(ctx, input);
  }

  private reply(
    res: ServerResponse,
    ctx: Ctx,
    status: number,
    type: string,
    body: string,
    errorCode?: string,
    headers: Record<string, string> = {},
  ): void {
    res.writeHead(status, { 'content-type': type, 'x-amzn-requestid': ctx.requestId, ...headers });
    res.end(body);
    const session = ctx.accessKeyId === undefined ? undefined : this.env.state.sessions.get(ctx.accessKeyId);
    const record: RequestRecord = {
      time: new Date().toISOString(),
      service: ctx.service,
      operation: ctx.operation,
      account: ctx.account,
      region: ctx.region,
      status,
      errorCode,
      principal: session?.roleArn,
      authorizations: ctx.authorizations,
    };
    this.requests.push(record);
    this.onRequest?.(record);
  }

  private controlRequest(method: string, path: string, body: string, res: ServerResponse): void {
    try {
      const parsed: unknown = body === '' ? undefined : JSON.parse(body);
      const result = this.control(method, path, parsed);
      if (result instanceof ControlPage) {
        res.writeHead(200, { 'content-type': result.contentType, 'cache-control': 'no-store' });
        res.end(result.body);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(toJsonSafe(result ?? { ok: true }), null, 2));
    } catch (error: unknown) {
      res.writeHead(error instanceof AwsError ? error.status : 400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
    }
  }
}

export { ControlPage, SandboxServer, op, systemCtx, toJsonSafe };
export type { ControlHandler, Ctx, Handler, RequestRecord, RestReply, SandboxEnv, ServiceDef };
