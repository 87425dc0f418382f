/**
 * The one way an entry point becomes a Lambda handler: the middy chain every function uses (the structured
 * logger with the invocation's context, cleared each time; the metrics flushed at the end) around a
 * parse-or-reject step. Tracing is the client factory's (runtime.ts): every AWS client is captured there.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { InputError } from '../../lib/core/errors.ts';
import { logger, metrics, rejectInput } from './runtime.ts';

/** What a run gets besides its parsed input. */
interface Invocation {
  event: unknown;
  context: Context;
  /** Aborted `timeoutEarlyInMillis` before Lambda's timeout (only when that option is given). */
  signal: AbortSignal;
}

interface HandlerSpec<I, R> {
  /**
   * The event as the run's input. An {@link InputError} thrown here rejects the event: logged as one bounded
   * line, counted, and answered `{ status: 'rejected' }` without a throw, so nothing retries it.
   */
  parse: (event: unknown) => I;
  run: (input: I, invocation: Invocation) => Promise<R>;
  /** Stop the run this long before Lambda's timeout, so that it can still report (middy's option). */
  timeoutEarlyInMillis?: number;
}

function lambdaHandler<I, R>(spec: HandlerSpec<I, R>) {
  const entry = async (event: unknown, context: Context, { signal }: { signal: AbortSignal }) => {
    let input: I;
    try {
      input = spec.parse(event);
    } catch (error: unknown) {
      if (error instanceof InputError) return rejectInput(error, event);
      throw error;
    }
    return spec.run(input, { event, context, signal });
  };
  // middy's own default applies unless the option is given (an explicit undefined would turn it off)
  const options = spec.timeoutEarlyInMillis === undefined ? undefined : { timeoutEarlyInMillis: spec.timeoutEarlyInMillis };
  return middy(entry, options)
    .use(injectLambdaContext(logger, { clearState: true }))
    .use(logMetrics(metrics));
}

export { lambdaHandler };
export type { HandlerSpec, Invocation };
