import { cleanup } from '../lib/cleanup/cleanup.ts';
import { ConfigError, InputError } from '../lib/core/errors.ts';
import { type CleanupRequest, parseCleanupRequest } from '../lib/cleanup/request.ts';
import { type Invocation, lambdaHandler } from './shared/handler.ts';
import { failedRun, recordCleanup, rejectInput, runtimeDeps } from './shared/runtime.ts';

/**
 * Manual cleanup: `serverless invoke -f cleanup --data '{"distributionConfigurationArn":"…","mode":"plan"}'`.
 * Plans by default; `"mode": "apply"` acts. Returns the cleanup report. The payload is strict (see
 * `parseCleanupRequest`): an unknown key, a wrong type, or an override that would loosen a deployment guard
 * is rejected, naming the field, before any AWS call.
 */
async function cleanupHandler(request: CleanupRequest, { event }: Invocation) {
  let report: Awaited<ReturnType<typeof cleanup>>;
  try {
    report = await cleanup(request, runtimeDeps());
  } catch (error: unknown) {
    // an override that would loosen a deployment guard: refused before any AWS call
    if (error instanceof InputError) return rejectInput(error, event);
    if (error instanceof ConfigError) throw error;
    // a problem in AWS (an unreadable configuration): a failed report, not a throw that retries
    return failedRun('cleanup', error, { distributionConfigurationArn: request.distributionConfigurationArn });
  }
  recordCleanup(report);
  return report;
}

const handler = lambdaHandler({ parse: (event) => parseCleanupRequest(event, 'manual'), run: cleanupHandler });

export { handler };
