import { AwsError } from '../protocol/errors.ts';

/** Pagination as the real list calls do it: an opaque NextToken and a bounded page size. */
function paginate<T>(
  items: T[],
  maxResults: unknown,
  nextToken: unknown,
  options: { default: number; min?: number; max: number },
): { page: T[]; nextToken: string | undefined } {
  let size = options.default;
  if (maxResults !== undefined) {
    const n = Number(maxResults);
    if (!Number.isInteger(n) || n < (options.min ?? 1) || n > options.max) {
      throw new AwsError(
        'InvalidParameterValue',
        `MaxResults must be between ${options.min ?? 1} and ${options.max}, got ${String(maxResults)}`,
      );
    }
    size = n;
  }
  let start = 0;
  if (nextToken !== undefined && nextToken !== '') {
    const decoded = Number(
      Buffer.from(String(nextToken), 'base64url')
        .toString('utf8')
        .replace(/^offset:/, ''),
    );
    if (!Number.isInteger(decoded) || decoded < 0) throw new AwsError('InvalidNextToken', 'The specified token is not valid.');
    start = decoded;
  }
  const page = items.slice(start, start + size);
  const next = start + size < items.length ? Buffer.from(`offset:${start + size}`).toString('base64url') : undefined;
  return { page, nextToken: next };
}

/** EC2 filter value matching: `*` and `?` wildcards. */
function wildcard(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    's',
  );
  return re.test(value);
}

interface Filter {
  Name?: string | undefined;
  Values?: string[] | undefined;
}

/** Apply EC2-style filters: every filter must match (AND); any value of a filter may match (OR). */
function applyFilters<T>(items: T[], filters: Filter[] | undefined, fields: (item: T, name: string) => string[] | undefined): T[] {
  if (filters === undefined || filters.length === 0) return items;
  return items.filter((item) =>
    filters.every((filter) => {
      const name = filter.Name ?? '';
      const values = fields(item, name);
      if (values === undefined) throw new AwsError('InvalidParameterValue', `The filter '${name}' is invalid`);
      return (filter.Values ?? []).some((pattern) => values.some((value) => wildcard(pattern, value)));
    }),
  );
}

function tagList(tags: Map<string, string>): { Key: string; Value: string }[] {
  return [...tags.entries()].map(([Key, Value]) => ({ Key, Value }));
}

function tagFilter(tags: Map<string, string>, name: string): string[] | undefined {
  if (name.startsWith('tag:')) {
    const value = tags.get(name.slice(4));
    return value === undefined ? [] : [value];
  }
  if (name === 'tag-key') return [...tags.keys()];
  if (name === 'tag-value') return [...tags.values()];
  return undefined;
}

function validateTags(tags: { Key?: string | undefined; Value?: string | undefined }[]): void {
  if (tags.length > 50) throw new AwsError('TagLimitExceeded', 'The maximum number of tags per resource is 50');
  for (const tag of tags) {
    if (tag.Key === undefined || tag.Key === '') throw new AwsError('InvalidParameterValue', 'Tag keys must not be empty');
    if (tag.Key.toLowerCase().startsWith('aws:'))
      throw new AwsError('InvalidParameterValue', `Tag keys starting with 'aws:' are reserved for internal use: ${tag.Key}`);
    if (tag.Key.length > 128 || (tag.Value ?? '').length > 256) throw new AwsError('InvalidParameterValue', `Tag ${tag.Key} is too long`);
  }
}

export { applyFilters, paginate, tagFilter, tagList, validateTags, wildcard };
export type { Filter };
