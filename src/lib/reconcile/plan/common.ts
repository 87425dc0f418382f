import { createHash } from 'node:crypto';
import type { Failure } from '../../core/errors.ts';
import type { Check, CheckName } from '../types.ts';

/** What the planner needs besides desired and observed state. */
interface PlanContext {
  /** Times Fast Launch was re-enabled after a failure, by cell key (carried by the recheck message). */
  fastLaunchRetries: Readonly<Record<string, number>>;
  fastLaunchMaxRetries: number;
  retryFailedImages: boolean;
  /**
   * A `shared` cell (an account that only receives a launch permission) whose role cannot be assumed fails
   * (`RECONCILER_SHARED_ACCOUNTS=require`) instead of being skipped. Default false: nobody asked for a role
   * there, so its absence must not turn a run red.
   */
  sharedRoleRequired?: boolean;
  /**
   * When the plan covers one shard of the build (`desired.cells` are the shard's): whether this shard does the
   * image-level work (shard 1 does; RetryImage), and the keys of the other shards' cells that Image Builder
   * recorded no AMI for, so that the image-level decision still sees the whole build. Left out: the whole build.
   */
  shard?: { imageLevel: boolean; missingElsewhere: readonly string[] } | undefined;
  /**
   * A distribution gate's stage (docs/gate.md): the user's workflow rolls these cells out before the image is
   * AVAILABLE, so launch templates, Fast Launch and SSM parameters are checked and repaired while it is
   * DISTRIBUTING. Default false: never for a build that did not finish.
   */
  rollOut?: boolean;
}

/** Reasons more than one check gives. */
const REASONS = {
  accessDenied: (f: Failure) => `cannot reach the account: ${f.message}`,
  imageInProgress: (status: string) => `the image is ${status}; distribution has not finished`,
} as const;

/** A client token: the same parts give the same token, so a retried call is the same request. */
function token(...parts: string[]): string {
  return `ibr-${createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 48)}`;
}

/** A failed read becomes `pending` when retrying may help (throttling, not yet visible), else `failed`. */
function readFailure(check: CheckName, subject: string, failure: Failure): Check {
  const retryable = failure.kind === 'throttled' || failure.kind === 'not-found';
  return { check, subject, result: retryable ? 'pending' : 'failed', reason: failure.message };
}

export { REASONS, readFailure, token };
export type { PlanContext };
