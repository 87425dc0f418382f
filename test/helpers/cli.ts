import { main } from '../../src/cli/index.ts';

interface CliRun {
  code: number;
  out: string;
  err: string;
  /** stderr's lines, empty ones left out. */
  errLines: string[];
}

/**
 * The command line run in-process, its stdout and stderr collected. Not a terminal: no colour, no progress;
 * tables fit `columns` (without it: COLUMNS, else 80, as when stdout is not a terminal).
 */
async function cli(args: string[], columns?: number): Promise<CliRun> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`), isTTY: false, columns });
  return { code, out, err, errLines: err.split('\n').filter((l) => l !== '') };
}

export { cli };
export type { CliRun };
