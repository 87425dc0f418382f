/**
 * Only the manual path can revoke (issue 25): the reconcile function takes `{ "action": "revoke", … }` as a
 * manual payload, planned unless `apply` is true; an EventBridge event or a recheck message that carries
 * revoke fields is rejected by its strict schema, never run as a revoke.
 */
import { describe, expect, it } from 'vitest';
import { toReconcileInput, toRecheckRequest } from '../../src/lib/reconcile/input.ts';
import { getTestEvent } from '../helpers/events.ts';

const ARN = 'arn:aws:imagebuilder:us-east-1:111122223333:image/golden-windows/2.0.0/1';
const context = { partition: 'aws' };

describe('the revoke payload', () => {
  it('is a manual payload, planned unless apply is true', () => {
    expect(toReconcileInput({ action: 'revoke', imageBuildVersionArn: ARN }, context)).toStrictEqual({
      kind: 'revoke',
      request: { action: 'revoke', imageBuildVersionArn: ARN, mode: 'plan', reason: undefined, disable: undefined, trigger: 'manual' },
    });
    expect(
      toReconcileInput({ action: 'revoke', imageBuildVersionArn: ARN, apply: true, reason: 'CVE (alice)', disable: true }, context),
    ).toMatchObject({ kind: 'revoke', request: { mode: 'apply', reason: 'CVE (alice)', disable: true } });
    expect(toReconcileInput({ action: 'unrevoke', imageBuildVersionArn: ARN, apply: true }, context)).toMatchObject({
      kind: 'revoke',
      request: { action: 'unrevoke', mode: 'apply' },
    });
  });

  it('rejects what it does not know, naming it', () => {
    expect(() => toReconcileInput({ action: 'delete', imageBuildVersionArn: ARN }, context)).toThrow(/malformed revoke payload: action/);
    expect(() => toReconcileInput({ action: 'revoke', imageBuildVersionArn: ARN, mode: 'apply' }, context)).toThrow(
      /malformed revoke payload: Unrecognized key/,
    );
    expect(() => toReconcileInput({ action: 'revoke', imageBuildVersionArn: ARN, apply: 'yes' }, context)).toThrow(/apply/);
    expect(() => toReconcileInput({ action: 'revoke', imageBuildVersionArn: ARN, reason: 'x'.repeat(201) }, context)).toThrow(
      /at most 200 characters/,
    );
    expect(() => toReconcileInput({ action: 'unrevoke', imageBuildVersionArn: ARN, disable: true }, context)).toThrow(
      /unrevoke takes no disable/,
    );
    expect(() => toReconcileInput({ action: 'revoke', imageBuildVersionArn: ARN.replace(/\/1$/, '') }, context)).toThrow(/build number/);
  });

  it('never comes from an event or a recheck message', () => {
    const event = getTestEvent<Record<string, unknown>>('eventbridge/image-available');
    expect(() => toReconcileInput({ ...event, action: 'revoke' }, context)).toThrow(/Unrecognized key/);
    const body = JSON.stringify({ imageBuildVersionArn: ARN, attempt: 2, firstSeenAt: new Date().toISOString(), action: 'revoke' });
    expect(() => toRecheckRequest(body, { ...context, maxAttempts: 12, now: () => new Date() })).toThrow(/Unrecognized key/);
  });
});
