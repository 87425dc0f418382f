/**
 * Failed reads kept as data: a read that worked or failed, so that one denied or throttled call in one cell
 * becomes a reason in the report instead of an exception that loses the rest of the run.
 */
import { AwsCallError, type Failure, toFailure } from './errors.ts';

/** A read that worked or failed; failures are data, never thrown past the observation. */
type Observed<T> = { ok: true; value: T } | { ok: false; error: Failure };

/** Run one read in a cell, turning any failure into data that names the operation and the cell. */
async function read<T>(operation: string, cell: { accountId: string; region: string }, fn: () => Promise<T>): Promise<Observed<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (error: unknown) {
    return { ok: false, error: toFailure(new AwsCallError(operation, cell.accountId, cell.region, error)) };
  }
}

/** A read where "not found" means the resource does not exist (`null`), which a planner treats apart from a failed read. */
async function readOrNull<T>(
  operation: string,
  cell: { accountId: string; region: string },
  fn: () => Promise<T | null>,
): Promise<Observed<T | null>> {
  const result = await read(operation, cell, fn);
  return !result.ok && result.error.kind === 'not-found' ? { ok: true, value: null } : result;
}

export { read, readOrNull };
export type { Observed };
