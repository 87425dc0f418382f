import type { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { describe, expect, it } from 'vitest';
import type { HomeClients } from '../../src/lib/aws/clients.ts';
import { publishReport } from '../../src/lib/aws/outbox.ts';

/** A bus that keeps what it is sent. */
function bus() {
  const details: string[] = [];
  const clients = {
    eventBridge: {
      send: async (command: PutEventsCommand) => {
        details.push(command.input.Entries?.[0]?.Detail ?? '');
        return { FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] };
      },
    },
  } as unknown as HomeClients;
  return { clients, details };
}

describe('publishReport', () => {
  const big = {
    cells: Array.from({ length: 1000 }, (_, i) => ({ key: i, checks: 'x'.repeat(200) })),
    actions: Array.from({ length: 1000 }, (_, i) => ({ id: i, outcome: i === 7 ? 'failed' : 'applied', detail: 'y'.repeat(200) })),
  };
  const dropChecks = () => ({ cells: big.cells.map((c) => ({ ...c, checks: '' })) });
  const keepFailed = () => ({ actions: big.actions.filter((a) => a.outcome === 'failed') });

  it('sends a report that fits as it is', async () => {
    const { clients, details } = bus();
    await publishReport(clients, 'default', 'T', { a: 1 }, [], [dropChecks, keepFailed]);
    expect(JSON.parse(details[0] ?? '{}')).toStrictEqual({ a: 1 });
  });

  it('shrinks step by step, each step on top of the last, until the report fits in one event', async () => {
    const { clients, details } = bus();
    expect(await publishReport(clients, 'default', 'T', big, [], [dropChecks, keepFailed])).toBeUndefined();
    const sent = JSON.parse(details[0] ?? '{}') as typeof big & { truncated: boolean };
    expect(Buffer.byteLength(details[0] ?? '')).toBeLessThanOrEqual(240 * 1024);
    expect(sent.truncated).toBe(true);
    expect(sent.cells.every((c) => c.checks === '')).toBe(true);
    expect(sent.actions.map((a) => a.id)).toStrictEqual([7]);
  });

  it('stops at the first step that is enough', async () => {
    const { clients, details } = bus();
    const half = { cells: big.cells.map((c) => ({ ...c, checks: 'x'.repeat(300) })), actions: [] };
    await publishReport(clients, 'default', 'T', half, [], [dropChecks, () => ({ actions: ['dropped'] })]);
    expect((JSON.parse(details[0] ?? '{}') as { actions: unknown[] }).actions).toStrictEqual([]);
  });
});
