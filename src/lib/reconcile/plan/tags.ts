import type { DesiredCell } from '../../core/desired.ts';
import type { Action, Check, ObservedImage } from '../types.ts';

/** The configured amiTags: missing or different ones are set (`CreateTags`); tags not configured are left. */
function planTags(cell: DesiredCell, image: ObservedImage, actions: Action[]): Check {
  const missing: Record<string, string> = {};
  for (const [key, value] of Object.entries(cell.tags)) if (image.tags[key] !== value) missing[key] = value;
  const keys = Object.keys(missing);
  if (keys.length === 0)
    return { check: 'tags', subject: image.imageId, result: 'ok', reason: `${Object.keys(cell.tags).length} tag(s) present` };
  const id = `${cell.key}/create-tags/${image.imageId}`;
  actions.push({
    id,
    kind: 'create-tags',
    cell: { region: cell.region, accountId: cell.accountId },
    target: image.imageId,
    reason: `missing or different tag(s): ${keys.join(', ')}`,
    tags: missing,
  });
  return {
    check: 'tags',
    subject: image.imageId,
    result: 'drift',
    reason: `missing or different tag(s): ${keys.join(', ')}`,
    actionIds: [id],
  };
}

export { planTags };
