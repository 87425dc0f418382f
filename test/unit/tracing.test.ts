/** X-Ray tracing behind the deployment's `tracing` param: Powertools Tracer instruments every client the factory builds. */
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildBundles } from '../helpers/build.ts';

const OWN = '111122223333';

async function cellClientMiddleware(tracing: string): Promise<string[]> {
  vi.resetModules();
  vi.stubEnv('RECONCILER_TRACING', tracing);
  vi.stubEnv('RECONCILER_ACCOUNT_ID', OWN);
  // what Lambda sets: Powertools Tracer stays off outside Lambda
  vi.stubEnv('AWS_EXECUTION_ENV', 'AWS_Lambda_nodejs22.x');
  vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'imagebuilder-reconciler-dev-reconcile');
  vi.stubEnv('POWERTOOLS_TRACE_ENABLED', '');
  const { runtimeDeps } = await import('../../src/handlers/shared/runtime.ts');
  const cell = await runtimeDeps().clients.forCell(OWN, 'eu-west-1');
  return [cell.ec2, cell.imagebuilder, cell.ssm].flatMap((client) => client.middlewareStack.identify());
}

describe('tracing', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('with tracing Active, every client records its calls as X-Ray subsegments', async () => {
    const names = await cellClientMiddleware('Active');
    expect(names.filter((n) => /XRaySDKInstrumentation/.test(n))).toHaveLength(3);
  });

  it('with PassThrough (the default) no client is instrumented', async () => {
    const names = await cellClientMiddleware('PassThrough');
    expect(names.some((n) => /XRay/i.test(n))).toBe(false);
  });

  it('a deployed bundle loads the X-Ray SDK (and its async hook, which makes every promise dearer) only with Active', () => {
    buildBundles();
    // a fresh process imports the bundle as Lambda does, counting the async hooks created while it loads
    const count = (tracing: string) =>
      execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import hooks from 'node:async_hooks';
           let created = 0;
           const createHook = hooks.createHook;
           hooks.createHook = (...args) => { created += 1; return createHook(...args); };
           await import(${JSON.stringify(pathToFileURL('dist/lambda/reconcile/index.mjs').href)});
           process.stdout.write(String(created));`,
        ],
        {
          encoding: 'utf8',
          env: {
            PATH: process.env.PATH,
            RECONCILER_TRACING: tracing,
            RECONCILER_ACCOUNT_ID: OWN,
            AWS_REGION: 'eu-west-1',
            POWERTOOLS_LOG_LEVEL: 'SILENT',
          },
        },
      );
    expect([count('PassThrough'), count('Active')]).toStrictEqual(['0', '1']);
  }, 60_000);

  it('rejects a tracing value that is neither', async () => {
    const { loadConfig } = await import('../../src/lib/core/config.ts');
    expect(() => loadConfig({ RECONCILER_TRACING: 'true' })).toThrow('RECONCILER_TRACING must be one of Active, PassThrough, got "true"');
  });
});
