/**
 * The hostile-input corpus (test/fixtures/hostile/*.json): malformed or hostile events for each of the four
 * functions, fed to the real handlers on mocked AWS. Each must be rejected without a retry (the function
 * returns; a recheck message is moved to the dead-letter queue and acknowledged), make no AWS call that
 * changes anything, and produce exactly one log line of bounded size.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { GetDistributionConfigurationCommand } from '@aws-sdk/client-imagebuilder';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { context } from '../helpers/context.ts';
import { getTestEvent } from '../helpers/events.ts';
import { afterImageBuilder } from '../helpers/factories.ts';
import { type Mocks, OWN, awsError, installWorld } from '../helpers/world.ts';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;
type Path = (string | number)[];

interface HostileCase {
  name: string;
  /** The event itself, or a sample from events/ (`base`) changed by `set` / `delete` (top-level keys). */
  event?: unknown;
  base?: string;
  set?: Record<string, unknown>;
  delete?: string[];
  /** Recheck only: the raw message body, or a message serialised as JSON. */
  body?: string;
  message?: unknown;
  /** Put a string of `bytes` characters (starting with `prefix`) at `path`: the 5 MB payloads. */
  fill?: { path: Path; prefix: string; bytes: number };
  expect: { outcome: 'rejected' | 'ignored' | 'dead-lettered'; error?: string; reason?: string };
}

interface Corpus {
  function: 'reconcile' | 'recheck' | 'cleanup' | 'cleanup-on-change' | 'gate';
  cases: HostileCase[];
}

const NOW = new Date('2031-06-15T12:00:00.000Z');
const DLQ = 'https://sqs.us-east-1.amazonaws.com/111122223333/recheck-dlq';
/** No log line of a rejected input is longer than this, whatever the input's size. */
const MAX_LINE_BYTES = 4096;

const dir = new URL('../fixtures/hostile/', import.meta.url);
const corpora: Corpus[] = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as Corpus);

function setAt(target: unknown, path: Path, value: unknown): void {
  let node = target as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1] ?? ''] = value;
}

function inputOf(c: HostileCase): unknown {
  let value: unknown = c.base === undefined ? structuredClone(c.event ?? null) : getTestEvent(c.base);
  if (c.message !== undefined || c.body !== undefined) value = structuredClone(c.message ?? null);
  if (c.set !== undefined) Object.assign(value as object, c.set);
  for (const key of c.delete ?? []) delete (value as Record<string, unknown>)[key];
  if (c.fill !== undefined) setAt(value, c.fill.path, c.fill.prefix + 'A'.repeat(c.fill.bytes - c.fill.prefix.length));
  return value;
}

function sqsEvent(body: string): SQSEvent {
  const event = getTestEvent<SQSEvent>('sqs/recheck');
  const record = event.Records[0];
  if (record === undefined) throw new Error('the recheck sample has no record');
  return { Records: [{ ...record, messageId: 'hostile-1', body }] };
}

function totalCalls(mocks: Mocks): number {
  return Object.values(mocks).reduce((sum, mock) => sum + mock.calls().length, 0);
}

describe('the hostile-input corpus', () => {
  const handlers: Record<Corpus['function'], Handler> = {} as Record<Corpus['function'], Handler>;
  let mocks: Mocks;
  let lines: string[];

  beforeAll(async () => {
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
    vi.stubEnv('RECONCILER_ACCOUNT_ID', OWN);
    vi.stubEnv('RECONCILER_EVENT_BUS', 'default');
    vi.stubEnv('RECONCILER_RECHECK_QUEUE_URL', 'https://sqs.us-east-1.amazonaws.com/111122223333/recheck');
    vi.stubEnv('RECONCILER_RECHECK_DLQ_URL', DLQ);
    handlers.reconcile = (await import('../../src/handlers/reconcile.ts')).handler as Handler;
    handlers.recheck = (await import('../../src/handlers/recheck.ts')).handler as Handler;
    handlers.cleanup = (await import('../../src/handlers/cleanup.ts')).handler as Handler;
    handlers['cleanup-on-change'] = (await import('../../src/handlers/cleanup-on-change.ts')).handler as Handler;
    handlers.gate = (await import('../../src/handlers/gate.ts')).handler as Handler;
  });
  afterAll(() => {
    vi.unstubAllEnvs();
  });
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'], now: NOW });
    mocks = installWorld(afterImageBuilder());
    lines = [];
    const capture = (chunk: string | Uint8Array): boolean => {
      lines.push(
        ...String(chunk)
          .split('\n')
          .filter((line) => line !== ''),
      );
      return true;
    };
    vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    for (const mock of Object.values(mocks)) mock.restore();
    vi.useRealTimers();
  });

  it('holds at least 30 cases, across all five event-driven functions', () => {
    expect(corpora.map((c) => c.function).sort()).toStrictEqual(['cleanup', 'cleanup-on-change', 'gate', 'recheck', 'reconcile']);
    expect(corpora.flatMap((c) => c.cases).length).toBeGreaterThanOrEqual(30);
  });

  for (const corpus of corpora) {
    describe(corpus.function, () => {
      it.each(corpus.cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
        const input = inputOf(c);
        const handler = handlers[corpus.function];

        if (corpus.function === 'recheck') {
          const body = c.body ?? JSON.stringify(input);
          const result = await handler(sqsEvent(body), context);
          // acknowledged, so SQS does not deliver it again ...
          expect(result).toStrictEqual({ batchItemFailures: [] });
          // ... because it is in the dead-letter queue, whole, with the reason; and nothing else was called
          const sent = mocks.sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input);
          expect(sent).toHaveLength(1);
          expect(sent[0]?.QueueUrl).toBe(DLQ);
          expect(sent[0]?.MessageBody).toBe(body === '' ? '(empty message)' : body);
          expect(sent[0]?.MessageAttributes?.reason?.StringValue).toMatch(new RegExp(c.expect.error ?? '.'));
          expect(totalCalls(mocks)).toBe(1);
        } else {
          const result = await handler(input, context);
          if (c.expect.outcome === 'ignored') {
            expect(result).toMatchObject({ status: 'ignored', reason: expect.stringMatching(new RegExp(c.expect.reason ?? '.')) });
          } else {
            expect(result).toMatchObject({ status: 'rejected', error: expect.stringMatching(new RegExp(c.expect.error ?? '.')) });
          }
          // no AWS call at all, so none that writes
          expect(totalCalls(mocks)).toBe(0);
        }

        expect(lines).toHaveLength(1);
        const line = lines[0] ?? '';
        expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_LINE_BYTES);
        const record = JSON.parse(line) as { message: string; input?: { bytes: number } };
        expect(record.message).toBe(c.expect.outcome === 'ignored' ? 'ignored input' : 'rejected input');
        if (c.fill !== undefined) expect(record.input?.bytes).toBeGreaterThanOrEqual(c.fill.bytes);
      });
    });
  }

  it.each(['cleanup', 'cleanup-on-change'] as const)(
    '%s answers an unreadable configuration with a failed report, not a throw',
    async (fn) => {
      mocks.imagebuilder
        .on(GetDistributionConfigurationCommand)
        .rejects(awsError('ResourceNotFoundException', 'The distribution configuration does not exist.'));
      const arn = 'arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/gone';
      const event =
        fn === 'cleanup'
          ? { distributionConfigurationArn: arn, mode: 'apply' }
          : {
              version: '0',
              id: 'c1',
              'detail-type': 'AWS API Call via CloudTrail',
              source: 'aws.imagebuilder',
              detail: { eventName: 'UpdateDistributionConfiguration', requestParameters: { distributionConfigurationArn: arn } },
            };
      const result = await handlers[fn](event, context);
      expect(result).toMatchObject({
        status: 'failed',
        distributionConfigurationArn: arn,
        error: { kind: 'not-found', message: expect.stringMatching(/does not exist/) },
      });
      expect(mocks.ec2.calls()).toHaveLength(0);
    },
  );

  it('logs no secret a rejected input carries', async () => {
    const event = {
      imageBuildVersionArn: 'nope',
      credentials: { SecretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', SessionToken: 'FwoGZXIvYXdzEXAMPLE' },
    };
    await handlers.reconcile(event, context);
    expect(lines.join('\n')).not.toMatch(/wJalrXUtnFEMI|FwoGZXIvYXdz/);
    expect(lines.join('\n')).toMatch(/\[redacted\]/);
  });
});
