import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/lib/core/config.ts';

describe('configuration: idempotency records', () => {
  it('are off without a table, and kept 6 hours by default', () => {
    expect(loadConfig({})).toMatchObject({ idempotencyTable: '', idempotencyExpiryMinutes: 360 });
    expect(loadConfig({ RECONCILER_IDEMPOTENCY_TABLE: ' records ', RECONCILER_IDEMPOTENCY_EXPIRY_MINUTES: '60' })).toMatchObject({
      idempotencyTable: 'records',
      idempotencyExpiryMinutes: 60,
    });
  });

  it.each([
    [
      'a table name DynamoDB refuses',
      { RECONCILER_IDEMPOTENCY_TABLE: 'no spaces' },
      /^RECONCILER_IDEMPOTENCY_TABLE is not a DynamoDB table name .*: "no spaces"$/,
    ],
    ['a name too short', { RECONCILER_IDEMPOTENCY_TABLE: 'ab' }, /^RECONCILER_IDEMPOTENCY_TABLE is not a DynamoDB table name/],
    [
      'an expiry of 0',
      { RECONCILER_IDEMPOTENCY_EXPIRY_MINUTES: '0' },
      /^RECONCILER_IDEMPOTENCY_EXPIRY_MINUTES must be an integer from 1 to 43200, got "0"$/,
    ],
  ])('refuse %s with one line naming the variable', (_name, env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('configuration: the allow-list of target accounts', () => {
  it('is any account when unset, else the accounts listed', () => {
    expect(loadConfig({}).targetAccounts).toBeUndefined();
    expect([...(loadConfig({ RECONCILER_TARGET_ACCOUNTS: ' 111111111111, 222222222222 ' }).targetAccounts ?? [])]).toStrictEqual([
      '111111111111',
      '222222222222',
    ]);
  });

  it('refuses what is not a list of 12-digit accounts, naming the variable', () => {
    expect(() => loadConfig({ RECONCILER_TARGET_ACCOUNTS: '111111111111,prod' })).toThrow(
      /^RECONCILER_TARGET_ACCOUNTS must list 12-digit account IDs separated by commas, got "prod"$/,
    );
  });
});
