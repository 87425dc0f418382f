import { describe, expect, it } from 'vitest';
import { effectiveSettings, parseCleanupRequest } from '../../src/lib/cleanup/request.ts';
import { loadConfig } from '../../src/lib/core/config.ts';
import { InputError } from '../../src/lib/core/errors.ts';

const CONFIG = 'arn:aws:imagebuilder:us-east-1:111111111111:distribution-configuration/base';

describe('the launched-within guard of a cleanup run', () => {
  it('defaults to 30 days, and a deployment may set it', () => {
    expect(loadConfig({}).cleanupLaunchedWithinDays).toBe(30);
    expect(loadConfig({ RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS: '90' }).cleanupLaunchedWithinDays).toBe(90);
    expect(() => loadConfig({ RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS: '-1' })).toThrow(/RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS/);
  });

  it('a request may raise it, never lower it', () => {
    const config = loadConfig({});
    const request = (days: number) =>
      parseCleanupRequest({ distributionConfigurationArn: CONFIG, guards: { launchedWithinDays: days } }, 'manual');
    expect(effectiveSettings(config, parseCleanupRequest({ distributionConfigurationArn: CONFIG }, 'manual')).launchedWithinDays).toBe(30);
    expect(effectiveSettings(config, request(60)).launchedWithinDays).toBe(60);
    expect(effectiveSettings(config, request(30)).launchedWithinDays).toBe(30);
    expect(() => effectiveSettings(config, request(29))).toThrow(InputError);
    expect(() => effectiveSettings(config, request(29))).toThrow(
      "guards.launchedWithinDays 29 would loosen the deployment's 30 (RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS); a request can only raise it. Nothing was done.",
    );
    expect(() => request(1.5)).toThrow(/guards\.launchedWithinDays: must be a whole number of days/);
  });
});
