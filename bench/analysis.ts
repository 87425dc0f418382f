import type { RequestRecord } from '../sandbox/emulator/server.ts';

/**
 * What the bench computes from the sandbox's request log. The lower bound of a run is the longest chain of
 * calls that depend on each other (each must wait for the answer of the one before), times the injected
 * latency: no amount of concurrency makes a run faster than that. The chain is built from the calls the
 * log shows, with the data dependencies of the reconciler's algorithm:
 *
 * reconcile: GetImage → AssumeRole (per target account) → the cell's reads → the cell's writes, where
 *   DescribeImageAttribute and DescribeSnapshots need DescribeImages' answer (is there an image, which
 *   snapshots); a template's versions with the image are read alongside DescribeLaunchTemplates, and its
 *   default version is read after it only when the default is not one of them (so a cell with more
 *   DescribeLaunchTemplateVersions than DescribeLaunchTemplates calls has a chain of two there); and
 *   ModifyLaunchTemplate (the new default) needs CreateLaunchTemplateVersion's version number.
 * cleanup: GetDistributionConfiguration → ListImagePipelines → ListImagePipelineImages → GetImage → per
 *   removed cell AssumeRole → each DescribeImages (the tag search, then the candidates) → the reads that
 *   need the images (snapshots, references, launch permissions).
 */

const READ_LEVEL: Record<string, number> = {
  DescribeImages: 1,
  DescribeLaunchTemplates: 1,
  DescribeFastLaunchImages: 1,
  GetParameter: 1,
  DescribeImageAttribute: 2,
  DescribeSnapshots: 2,
  DescribeLaunchTemplateVersions: 1,
};
const WRITE_LEVEL: Record<string, number> = {
  CreateTags: 1,
  ModifyImageAttribute: 1,
  CreateLaunchTemplateVersion: 1,
  EnableFastLaunch: 1,
  PutParameter: 1,
  ModifyLaunchTemplate: 2,
};
const CLEANUP_PREFIX = ['GetDistributionConfiguration', 'ListImagePipelines', 'ListImagePipelineImages', 'GetImage'];
const CLEANUP_AFTER_IMAGES = new Set(['DescribeSnapshots', 'DescribeImageReferences', 'DescribeImageAttribute']);

/** Calls per (account, region) of the services that act in cells (EC2, SSM). */
function byCell(records: readonly RequestRecord[]): Map<string, RequestRecord[]> {
  const cells = new Map<string, RequestRecord[]>();
  for (const r of records) {
    if (r.service !== 'ec2' && r.service !== 'ssm') continue;
    const key = `${r.account}/${r.region}`;
    const list = cells.get(key);
    if (list === undefined) cells.set(key, [r]);
    else list.push(r);
  }
  return cells;
}

/** Longest chain of dependent calls of a run, from its request log. */
function criticalPath(kind: 'reconcile' | 'cleanup', records: readonly RequestRecord[], ownAccount: string): number {
  const ops = new Set(records.filter((r) => r.service === 'imagebuilder').map((r) => r.operation));
  let longest = 0;
  for (const [key, calls] of byCell(records)) {
    const assume = key.startsWith(`${ownAccount}/`) ? 0 : 1;
    let depth: number;
    if (kind === 'reconcile') {
      const count = (op: string) => calls.filter((c) => c.operation === op).length;
      const defaultsAfter = count('DescribeLaunchTemplateVersions') > count('DescribeLaunchTemplates') ? 2 : 0;
      const read = Math.max(defaultsAfter, ...calls.map((c) => READ_LEVEL[c.operation] ?? 0));
      const write = Math.max(0, ...calls.map((c) => WRITE_LEVEL[c.operation] ?? 0));
      depth = assume + read + write;
    } else {
      const describes = calls.filter((c) => c.operation === 'DescribeImages').length;
      depth = assume + describes + (calls.some((c) => CLEANUP_AFTER_IMAGES.has(c.operation)) ? 1 : 0);
    }
    longest = Math.max(longest, depth);
  }
  const prefix = kind === 'reconcile' ? (ops.has('GetImage') ? 1 : 0) : CLEANUP_PREFIX.filter((op) => ops.has(op)).length;
  return prefix + longest;
}

/** Requests answered with a throttling error. */
function throttledCalls(records: readonly RequestRecord[]): number {
  return records.filter(
    (r) => r.errorCode === 'RequestLimitExceeded' || r.errorCode === 'ThrottlingException' || r.errorCode === 'Throttling',
  ).length;
}

/** Calls by operation, most first (for the JSON output). */
function callsByOperation(records: readonly RequestRecord[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const r of records) counts.set(r.operation, (counts.get(r.operation) ?? 0) + 1);
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]));
}

export { byCell, callsByOperation, criticalPath, throttledCalls };
