import { createHash } from 'node:crypto';
import { allowed } from '../iam/authorize.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type RestReply, type ServiceDef, op } from '../server.ts';
import type { Bucket } from '../state.ts';
import { partitionOf } from '../partition.ts';

/**
 * Amazon S3 over its REST/XML protocol, path-style (`http://127.0.0.1:<port>/<bucket>/<key>`, the SDK's
 * `forcePathStyle`), as far as the export check needs it: CreateBucket, HeadBucket, ListObjectsV2,
 * PutObject, GetObject, HeadObject, DeleteObject (Amazon S3 API Reference, each operation's page).
 *
 * - Errors are S3's XML `<Error><Code/><Message/><RequestId/></Error>`; a HEAD answers the status alone
 *   (the SDK then names the error `NotFound`, `Forbidden`, …) ("HeadObject": "A HEAD request has the same
 *   options as a GET operation on an object. The response is identical to the GET response except that there
 *   is no response body").
 * - A missing key answers 404 `NoSuchKey` only to a caller allowed `s3:ListBucket` on the bucket, else 403
 *   AccessDenied ("If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403
 *   Forbidden error", GetObject and HeadObject, Permissions).
 * - A bucket belongs to one account; bucket policies and ACLs are not modelled, so another account is
 *   refused (AccessDenied), as S3 does without a policy that grants it.
 * - A request signed for another region than the bucket's is refused with `AuthorizationHeaderMalformed`
 *   ("the region 'x' is wrong; expecting 'y'"), as S3 answers it.
 * - A PutObject body sent with `aws-chunked` content encoding (the SDK's flexible checksums) is decoded.
 */

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

interface S3Input {
  Bucket?: string;
  Key?: string;
  Body?: string;
  ContentType?: string;
  ContentEncoding?: string;
  Prefix?: string;
  MaxKeys?: number;
  ContinuationToken?: string;
}

function bucketOf(ctx: Ctx, name: string | undefined): Bucket {
  const bucket = ctx.env.state.buckets.get(name ?? '');
  if (bucket === undefined) throw new AwsError('NoSuchBucket', 'The specified bucket does not exist', 404);
  if (bucket.ownerId !== ctx.account) throw new AwsError('AccessDenied', 'Access Denied', 403);
  if (bucket.region !== ctx.region)
    throw new AwsError(
      'AuthorizationHeaderMalformed',
      `The authorization header is malformed; the region '${ctx.region}' is wrong; expecting '${bucket.region}'`,
      400,
    );
  return bucket;
}

function objectOf(ctx: Ctx, input: S3Input) {
  const bucket = bucketOf(ctx, input.Bucket);
  const object = bucket.objects.get(input.Key ?? '');
  if (object === undefined) {
    if (!allowed(ctx, { action: 's3:ListBucket', resource: `arn:${partitionOf(ctx.region)}:s3:::${bucket.name}` }))
      throw new AwsError('AccessDenied', 'Access Denied', 403);
    throw new AwsError('NoSuchKey', 'The specified key does not exist.', 404);
  }
  return object;
}

/** Decode an `aws-chunked` body: `<hex size>[;chunk-signature=…]\r\n<data>\r\n` … `0\r\n<trailers>\r\n\r\n`. */
function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol === -1) return out;
    const size = Number.parseInt(rest.slice(0, eol).split(';')[0] ?? '0', 16);
    if (!Number.isFinite(size) || size === 0) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

function objectHeaders(o: { body: string; etag: string; lastModified: Date; contentType: string }): Record<string, string> {
  return {
    ETag: `"${o.etag}"`,
    'Content-Length': String(Buffer.byteLength(o.body)),
    'Last-Modified': o.lastModified.toUTCString(),
    'Content-Type': o.contentType,
    'Accept-Ranges': 'bytes',
  };
}

const s3: ServiceDef = {
  name: 's3',
  protocol: 'rest-xml',
  schemas: {},
  route(method, url) {
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const Bucket = decodeURIComponent(bucket);
    const Key = rest.map((part) => decodeURIComponent(part)).join('/');
    if (Bucket === '') return undefined;
    if (Key === '') {
      if (method === 'PUT') return { operation: 'CreateBucket', input: { Bucket } };
      if (method === 'HEAD') return { operation: 'HeadBucket', input: { Bucket } };
      if (method === 'GET' && url.searchParams.get('list-type') === '2') {
        const max = url.searchParams.get('max-keys');
        return {
          operation: 'ListObjectsV2',
          input: {
            Bucket,
            Prefix: url.searchParams.get('prefix') ?? undefined,
            MaxKeys: max === null ? undefined : Number(max),
            ContinuationToken: url.searchParams.get('continuation-token') ?? undefined,
          },
        };
      }
      return undefined;
    }
    const operation = { PUT: 'PutObject', GET: 'GetObject', HEAD: 'HeadObject', DELETE: 'DeleteObject' }[method];
    return operation === undefined ? undefined : { operation, input: { Bucket, Key } };
  },
  handlers: {
    CreateBucket: op((ctx: Ctx, input: S3Input): RestReply => {
      const name = input.Bucket ?? '';
      // bucket naming rules (S3 User Guide, "General purpose bucket naming rules"): 3–63 characters, lowercase
      // letters, numbers, dots and hyphens, beginning and ending with a letter or number
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name))
        throw new AwsError('InvalidBucketName', 'The specified bucket is not valid.', 400);
      const existing = ctx.env.state.buckets.get(name);
      if (existing !== undefined) {
        if (existing.ownerId === ctx.account)
          throw new AwsError(
            'BucketAlreadyOwnedByYou',
            'Your previous request to create the named bucket succeeded and you already own it.',
            409,
          );
        throw new AwsError(
          'BucketAlreadyExists',
          'The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.',
          409,
        );
      }
      ctx.env.state.buckets.set(name, { name, ownerId: ctx.account, region: ctx.region, created: ctx.env.clock.iso(), objects: new Map() });
      return { headers: { Location: `/${name}` } };
    }),
    HeadBucket: op((ctx: Ctx, input: S3Input): RestReply => {
      const bucket = bucketOf(ctx, input.Bucket);
      return { headers: { 'x-amz-bucket-region': bucket.region } };
    }),
    ListObjectsV2: op((ctx: Ctx, input: S3Input): RestReply => {
      const bucket = bucketOf(ctx, input.Bucket);
      const max = input.MaxKeys ?? 1000;
      if (!Number.isInteger(max) || max < 0)
        throw new AwsError('InvalidArgument', 'Provided max-keys not an integer or within integer range', 400);
      const keys = [...bucket.objects.keys()].filter((k) => k.startsWith(input.Prefix ?? '')).sort();
      const start = input.ContinuationToken === undefined ? 0 : Number(Buffer.from(input.ContinuationToken, 'base64url').toString('utf8'));
      if (!Number.isInteger(start) || start < 0) throw new AwsError('InvalidArgument', 'The continuation token provided is incorrect', 400);
      const page = keys.slice(start, start + Math.min(max, 1000));
      const truncated = start + page.length < keys.length;
      const contents = page
        .map((key) => {
          const o = bucket.objects.get(key);
          return o === undefined
            ? ''
            : `<Contents><Key>${esc(key)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified><ETag>&quot;${o.etag}&quot;</ETag><Size>${Buffer.byteLength(o.body)}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
        })
        .join('');
      const next = truncated
        ? `<NextContinuationToken>${Buffer.from(String(start + page.length)).toString('base64url')}</NextContinuationToken>`
        : '';
      const body = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="${XMLNS}"><Name>${esc(bucket.name)}</Name><Prefix>${esc(input.Prefix ?? '')}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}${next}</ListBucketResult>`;
      return { headers: { 'Content-Type': 'application/xml' }, body };
    }),
    PutObject: op((ctx: Ctx, input: S3Input): RestReply => {
      const bucket = bucketOf(ctx, input.Bucket);
      const body = (input.ContentEncoding ?? '').includes('aws-chunked') ? dechunk(input.Body ?? '') : (input.Body ?? '');
      const etag = createHash('md5').update(body).digest('hex');
      bucket.objects.set(input.Key ?? '', {
        body,
        etag,
        lastModified: ctx.env.clock.date(),
        contentType: input.ContentType ?? 'application/octet-stream',
      });
      return { headers: { ETag: `"${etag}"` } };
    }),
    GetObject: op((ctx: Ctx, input: S3Input): RestReply => {
      const o = objectOf(ctx, input);
      return { headers: objectHeaders(o), body: o.body };
    }),
    HeadObject: op((ctx: Ctx, input: S3Input): RestReply => ({ headers: objectHeaders(objectOf(ctx, input)) })),
    DeleteObject: op((ctx: Ctx, input: S3Input): RestReply => {
      bucketOf(ctx, input.Bucket).objects.delete(input.Key ?? '');
      return { status: 204 };
    }),
  },
};

/** The S3 error body (REST error responses, S3 API Reference "Error responses"). */
function s3Error(error: AwsError, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${esc(error.code)}</Code><Message>${esc(error.message)}</Message><RequestId>${requestId}</RequestId></Error>`;
}

/** Write an object as a service would (the export of an image): the bucket's owner writes it. */
function putObject(bucket: Bucket, key: string, body: string, at: Date): void {
  bucket.objects.set(key, {
    body,
    etag: createHash('md5').update(body).digest('hex'),
    lastModified: at,
    contentType: 'application/octet-stream',
  });
}

export { putObject, s3, s3Error };
