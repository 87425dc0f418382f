/**
 * What the fidelity suite (test/fidelity/) shares: a bare emulator per file, and the AWS CLI v2 (Debian's
 * awscli, /usr/bin/aws) as a client no one here wrote. A case the CLI can send goes through it; the cases are
 * skipped when it is not installed.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { type Emulator, startEmulator } from '../../sandbox/emulator/index.ts';

const AWS_CLI = '/usr/bin/aws';
const HAS_AWS_CLI = existsSync(AWS_CLI);

interface CliAnswer {
  /** The process's exit code (0: success; 254/255: the service's error). */
  code: number;
  stdout: string;
  stderr: string;
  /** The error code the CLI prints (`An error occurred (Code) when calling …`), when it failed. */
  error: string | undefined;
  /** stdout as JSON, when there is any. */
  json: unknown;
}

/** Run the AWS CLI against `url` as `account` (a 12-digit access key acts as that account), one attempt. */
function awsCli(url: string, account: string, region: string, args: string[]): Promise<CliAnswer> {
  return new Promise((resolve) => {
    execFile(
      AWS_CLI,
      ['--endpoint-url', url, '--region', region, '--output', 'json', ...args],
      {
        env: {
          PATH: process.env.PATH,
          HOME: '/nonexistent',
          AWS_ACCESS_KEY_ID: account,
          AWS_SECRET_ACCESS_KEY: 'sandbox',
          AWS_PAGER: '',
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_MAX_ATTEMPTS: '1',
          AWS_RETRY_MODE: 'standard',
        },
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        let json: unknown;
        try {
          json = stdout.trim() === '' ? undefined : JSON.parse(stdout);
        } catch (parse: unknown) {
          if (!(parse instanceof SyntaxError)) throw parse;
        }
        resolve({ code, stdout, stderr, error: /An error occurred \(([^)]+)\)/.exec(stderr)?.[1], json });
      },
    );
  });
}

/**
 * One emulator for the tests of the enclosing file (started before them, stopped after), with the given
 * accounts and regions, its clock at real speed.
 */
function useEmulator(options: { defaultAccount?: string; accounts?: string[]; regions?: string[]; speed?: number } = {}): {
  get: () => Emulator;
} {
  let emulator: Emulator | undefined;
  beforeAll(async () => {
    const defaultAccount = options.defaultAccount ?? '111111111111';
    emulator = await startEmulator({
      port: 0,
      defaultAccount,
      accounts: options.accounts ?? [defaultAccount, '222222222222'],
      regions: options.regions ?? ['us-east-1', 'eu-west-1'],
      clock: { speed: options.speed ?? 1, start: Date.now() },
    });
  });
  afterAll(async () => {
    emulator?.clock.stop();
    await emulator?.server.close();
  });
  return {
    get: () => {
      if (emulator === undefined) throw new Error('the emulator is not started yet (call get() in a test or hook)');
      return emulator;
    },
  };
}

/** The error a promise rejects with (undefined when it resolves). */
async function failure(
  promise: Promise<unknown>,
): Promise<{ name?: string; message?: string; $metadata?: { httpStatusCode?: number } } | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error: unknown) {
    if (error instanceof Error) return error as Error & { $metadata?: { httpStatusCode?: number } };
    throw error;
  }
}

export { AWS_CLI, HAS_AWS_CLI, awsCli, failure, useEmulator };
export type { CliAnswer };
