import { randomUUID } from 'node:crypto';
import { SandboxClock } from './clock.ts';
import { type FaultSettings, Faults } from './faults.ts';
import { AwsError } from './protocol/errors.ts';
import { type ControlHandler, type SandboxEnv, SandboxServer, type ServiceDef } from './server.ts';
import { autoscaling } from './services/autoscaling.ts';
import { batch } from './services/batch.ts';
import { cloudformation } from './services/cloudformation.ts';
import { dynamodb } from './services/dynamodb.ts';
import { ec2 } from './services/ec2/index.ts';
import { emr } from './services/emr.ts';
import { events } from './services/eventbridge.ts';
import { iam } from './services/iam.ts';
import { imagebuilder } from './services/imagebuilder.ts';
import { licenseManager } from './services/licensemanager.ts';
import { organizations } from './services/organizations.ts';
import { s3 } from './services/s3.ts';
import { sqs } from './services/sqs.ts';
import { ssm } from './services/ssm.ts';
import { sts } from './services/sts.ts';
import { type PublishedEvent, SandboxState } from './state.ts';

/** Every service the emulator speaks. */
const SERVICES: ServiceDef[] = [
  ec2,
  imagebuilder,
  sts,
  iam,
  events,
  sqs,
  ssm,
  autoscaling,
  cloudformation,
  batch,
  emr,
  licenseManager,
  organizations,
  s3,
  dynamodb,
];

interface EmulatorOptions {
  /** Port on 127.0.0.1; 0 picks a free one. */
  port: number;
  defaultAccount: string;
  accounts: string[];
  regions: string[];
  /** Simulated seconds per real second, and the simulated time (ms since the epoch) the clock starts at. */
  clock: { speed: number; start: number };
  /** Called for every event published on a bus, once it is recorded in the state. */
  onPublish?: (event: PublishedEvent) => void;
  /** Control endpoints (`/_sandbox/…`) of whoever runs the emulator, tried before the emulator's own. */
  control?: ControlHandler;
}

interface Emulator {
  url: string;
  state: SandboxState;
  clock: SandboxClock;
  faults: Faults;
  server: SandboxServer;
  /** What the services see: the state, the clock, the faults, the URL and the event bus. */
  env: SandboxEnv;
}

/** What a control handler answers for a path it does not serve: the emulator's own endpoints are tried next. */
const NOT_MINE = Symbol('not mine');

/**
 * Start the local AWS: one HTTP server speaking the wire protocols of Image Builder, EC2, STS, IAM,
 * EventBridge, SQS, SSM, Auto Scaling, CloudFormation, AWS Batch, Amazon EMR, License Manager, Organizations, S3 and DynamoDB over the given accounts
 * and regions, with its control API (`/_sandbox/events`, `/requests`, `/faults`, `/clock`, `/state`).
 */
async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  const state = new SandboxState({ defaultAccount: options.defaultAccount, accounts: options.accounts, regions: options.regions });
  const clock = new SandboxClock(options.clock);
  const faults = new Faults();
  let url = '';
  const env: SandboxEnv = {
    state,
    clock,
    faults,
    url: () => url,
    publish: (event) => {
      const full: PublishedEvent = { ...event, id: randomUUID(), time: clock.iso() };
      state.events.push(full);
      options.onPublish?.(full);
    },
  };
  const server = new SandboxServer(env, SERVICES, (method, path, body) => {
    const theirs = options.control === undefined ? NOT_MINE : options.control(method, path, body);
    return theirs === NOT_MINE ? control(method, path, body) : theirs;
  });
  url = await server.listen(options.port);

  function control(method: string, path: string, body: unknown): unknown {
    const input = (body ?? {}) as Record<string, unknown>;
    switch (`${method} ${path}`) {
      case 'GET /_sandbox/events':
        return state.events;
      case 'GET /_sandbox/requests':
        return server.requests;
      case 'GET /_sandbox/faults':
        return faults.settings;
      case 'PUT /_sandbox/faults':
        faults.set(input as FaultSettings);
        return faults.settings;
      case 'POST /_sandbox/faults':
        faults.merge(input as FaultSettings);
        return faults.settings;
      case 'POST /_sandbox/clock':
        if (typeof input.speed === 'number') clock.speed = input.speed;
        if (typeof input.advanceSeconds === 'number') clock.advance(input.advanceSeconds * 1000);
        return { clock: clock.iso(), speed: clock.speed };
      case 'GET /_sandbox/state':
        return state.allCells().map(({ account, region, store }) => ({
          account,
          region,
          images: [...store.images.values()]
            .filter((i) => i.state !== 'deregistered')
            .map((i) => ({ imageId: i.imageId, name: i.name, state: i.state, tags: Object.fromEntries(i.tags) })),
          launchTemplates: [...store.launchTemplates.values()].map((t) => ({
            id: t.id,
            name: t.name,
            defaultVersion: t.defaultVersion,
            latestVersion: t.versions.length,
            defaultImageId: t.versions[t.defaultVersion - 1]?.data.ImageId,
          })),
          fastLaunch: [...store.fastLaunch.values()].map((f) => ({ imageId: f.imageId, state: f.state })),
          parameters: [...store.parameters.values()].map((p) => ({ name: p.name, value: p.value })),
        }));
      default:
        throw new AwsError('NotFound', `no control endpoint ${method} ${path}`, 404);
    }
  }

  return { url, state, clock, faults, server, env };
}

export { NOT_MINE, SERVICES, startEmulator };
export type { Emulator, EmulatorOptions };
