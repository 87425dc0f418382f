/**
 * A cell is one (region, account) of a build's matrix. Its key is written `<region>/<account>` everywhere: in
 * reports, in recheck messages' scopes, in the CLI, and as the key of every per-cell map.
 */
import { InputError } from './errors.ts';
import { REGION_SOURCE } from './regions.ts';

const CELL_KEY = new RegExp(`^(${REGION_SOURCE})/(\\d{12})$`);

/** The key of the cell (region, account): `us-east-1/111122223333`. */
function cellKey(region: string, accountId: string): string {
  return `${region}/${accountId}`;
}

/** The region and account of a cell key. Throws {@link InputError} for anything else. */
function parseCellKey(key: string): { region: string; accountId: string } {
  const match = CELL_KEY.exec(key);
  if (match === null) throw new InputError(`not a cell key: ${JSON.stringify(key.slice(0, 80))}; expected <region>/<account>`);
  return { region: match[1] as string, accountId: match[2] as string };
}

/** The key of one AMI in a cell: `<region>/<account>/<ami-id>`. */
function amiKey(region: string, accountId: string, imageId: string): string {
  return `${cellKey(region, accountId)}/${imageId}`;
}

export { CELL_KEY, amiKey, cellKey, parseCellKey };
