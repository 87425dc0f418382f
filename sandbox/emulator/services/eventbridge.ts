import { randomUUID } from 'node:crypto';
import * as eventsSchemas from '@aws-sdk/client-eventbridge';
import type { PutEventsRequest } from '@aws-sdk/client-eventbridge';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';

/** EventBridge: PutEvents onto the emulator's buses (who receives what is the harness's wiring). */
const events: ServiceDef = {
  name: 'events',
  protocol: 'json',
  schemas: eventsSchemas as unknown as Record<string, unknown>,
  handlers: {
    PutEvents: op((ctx: Ctx, input: PutEventsRequest) => {
      const entries = input.Entries ?? [];
      if (entries.length < 1 || entries.length > 10) throw new AwsError('ValidationException', 'Entries must contain 1 to 10 entries');
      const out = entries.map((entry) => {
        let detail: unknown;
        try {
          detail = JSON.parse(entry.Detail ?? '');
        } catch (error: unknown) {
          return {
            ErrorCode: 'MalformedDetail',
            ErrorMessage: `Detail is malformed: ${error instanceof Error ? error.message : String(error)}`,
          };
        }
        if (entry.Source === undefined || entry.DetailType === undefined)
          return { ErrorCode: 'InvalidArgument', ErrorMessage: 'Source and DetailType are required.' };
        if (Buffer.byteLength(JSON.stringify(entry)) > 256 * 1024)
          return { ErrorCode: 'InvalidArgument', ErrorMessage: 'Total size of the entries in the request is over the limit.' };
        const id = randomUUID();
        ctx.env.publish({
          account: ctx.account,
          region: ctx.region,
          bus: entry.EventBusName ?? 'default',
          source: entry.Source,
          detailType: entry.DetailType,
          resources: entry.Resources ?? [],
          detail,
        });
        return { EventId: id };
      });
      return { FailedEntryCount: out.filter((e) => 'ErrorCode' in e).length, Entries: out };
    }),
  },
};

export { events };
