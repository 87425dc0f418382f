/**
 * The command line never misleads: when it cannot talk to AWS it says why in one line, with what to do, and
 * exits 5 ("cannot run"), never 4 ("pending"); bad input of every command exits 2; tables fit the terminal.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { oneLine } from '../../src/cli/diagnose.ts';
import { visibleWidth } from '../../src/cli/format.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';
import { cli } from '../helpers/cli.ts';

const IMAGE = 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/1.0.0/1';

/** A closed port on loopback: connections are refused. */
const CLOSED = 'http://127.0.0.1:9';

/** AWS config files of our own, so that nothing of the machine's ~/.aws is read. */
function awsFiles(config: string, credentials = ''): void {
  const dir = mkdtempSync(join(tmpdir(), 'ibr-aws-'));
  writeFileSync(join(dir, 'config'), config);
  writeFileSync(join(dir, 'credentials'), credentials);
  vi.stubEnv('AWS_CONFIG_FILE', join(dir, 'config'));
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', join(dir, 'credentials'));
  // no instance metadata service on loopback-only machines: never try it
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('a command that cannot talk to AWS says why, once, and exits 5', () => {
  it.each([['status'], ['reconcile'], ['reconcile', '--plan']])('%s against a refused endpoint', async (...command) => {
    const { code, out, errLines } = await cli([...command, IMAGE, '--endpoint-url', CLOSED]);
    expect(code).toBe(5);
    expect(out).toBe('');
    expect(errLines).toEqual([
      `error: cannot reach ${CLOSED}: connection refused. Is the sandbox running (npm run sandbox)? Check --endpoint-url (or AWS_ENDPOINT_URL).`,
    ]);
  });

  it('cleanup and lint by ARN against a refused endpoint', async () => {
    const config = 'arn:aws:imagebuilder:us-east-1:111111111111:distribution-configuration/golden-windows';
    for (const command of ['cleanup', 'lint']) {
      const { code, errLines } = await cli([command, config, '--endpoint-url', CLOSED]);
      expect(code).toBe(5);
      expect(errLines).toHaveLength(1);
      expect(errLines[0]).toMatch(/^error: cannot reach http:\/\/127\.0\.0\.1:9: connection refused/);
    }
  });

  it('no credentials anywhere', async () => {
    awsFiles('');
    vi.stubEnv('AWS_ACCESS_KEY_ID', '');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', '');
    const { code, out, errLines } = await cli(['status', IMAGE, '--endpoint-url', CLOSED]);
    expect(code).toBe(5);
    expect(out).toBe('');
    expect(errLines).toHaveLength(1);
    expect(errLines[0]).toMatch(/^error: no AWS credentials found: pass --profile .*AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  });

  it('an unknown profile is bad input, naming the profiles there are', async () => {
    awsFiles('[profile dev]\nregion = eu-west-1\n[default]\nregion = us-east-1\n');
    const { code, errLines } = await cli(['status', IMAGE, '--profile', 'prod', '--endpoint-url', CLOSED]);
    expect(code).toBe(2);
    expect(errLines).toEqual(['error: unknown profile "prod": the profiles are default, dev (aws configure --profile prod creates it)']);
    vi.stubEnv('AWS_PROFILE', 'prod');
    expect((await cli(['status', IMAGE, '--endpoint-url', CLOSED])).code).toBe(2);
  });

  it('a region that does not exist is bad input, from --region or AWS_REGION', async () => {
    const flag = await cli(['status', IMAGE, '--region', 'xx-nowhere-9']);
    expect(flag.code).toBe(2);
    expect(flag.errLines).toEqual(['error: unknown region "xx-nowhere-9" (an AWS region name such as us-east-1 or eu-west-1) (--region)']);
    vi.stubEnv('AWS_REGION', 'us-nowhere-1');
    const env = await cli(['status', IMAGE]);
    expect(env.code).toBe(2);
    expect(env.errLines[0]).toMatch(/unknown region "us-nowhere-1" \(.*\) \(AWS_REGION\)/);
    // a near miss is named
    const typo = await cli(['status', IMAGE, '--region', 'us-est-1']);
    expect(typo.errLines).toEqual(['error: unknown region "us-est-1" (did you mean us-east-1?) (--region)']);
  });

  it('an endpoint that is not a URL is bad input', async () => {
    const { code, errLines } = await cli(['status', IMAGE, '--endpoint-url', '127.0.0.1:4566']);
    expect(code).toBe(2);
    expect(errLines).toEqual(['error: --endpoint-url must be an http(s) URL such as http://127.0.0.1:4566, got "127.0.0.1:4566"']);
  });

  it('a malformed ARN is bad input even when AWS is unreachable (checked before any call)', async () => {
    const { code, errLines } = await cli([
      'status',
      'arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows',
      '--endpoint-url',
      CLOSED,
    ]);
    expect(code).toBe(2);
    expect(errLines[0]).toMatch(/^error: not an image build version ARN/);
  });
});

describe('against the sandbox', () => {
  let box: Sandbox;
  let arn = '';
  const at = () => ['--endpoint-url', box.url, '--region', 'us-east-1'];
  const sandboxes = useSandbox();

  beforeAll(async () => {
    box = await sandboxes.start({ scenario: demoScenario() });
    const out = await clients(box.url, '111111111111').imagebuilder.send(
      new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:golden-windows'), clientToken: 'cli-errors' }),
    );
    arn = out.imageBuildVersionArn ?? '';
    box.clock.advance(2 * 3600_000);
  });
  afterEach(() => box.faults.set({}));

  it('an expired token: one line, exit 5, what to do', async () => {
    // STS answers ExpiredToken for session credentials past their expiry (STS API reference, Common Errors)
    box.faults.set({
      errors: [
        {
          operation: 'GetCallerIdentity',
          code: 'ExpiredToken',
          message: 'The security token included in the request is expired',
          status: 400,
        },
      ],
    });
    const { code, out, errLines } = await cli(['reconcile', arn, ...at()]);
    expect(code).toBe(5);
    expect(out).toBe('');
    expect(errLines).toEqual(['error: the AWS credentials have expired (ExpiredToken): get new session credentials, then run again.']);
  });

  it('AccessDenied on the first call (GetImage): one line naming the call, exit 5, nothing changed', async () => {
    box.faults.set({
      errors: [
        {
          operation: 'GetImage',
          code: 'AccessDeniedException',
          message: 'User is not authorized to perform: imagebuilder:GetImage',
          status: 403,
        },
      ],
    });
    const before = box.server.requests.length;
    const { code, out, errLines } = await cli(['status', arn, ...at()]);
    expect(code).toBe(5);
    expect(out).toBe('');
    expect(errLines).toEqual([
      `error: access denied to imagebuilder:GetImage on ${arn} (AccessDeniedException): the credentials need that permission; use a role or --profile that has it.`,
    ]);
    expect(box.server.requests.slice(before).map((r) => r.operation)).toEqual(['GetCallerIdentity', 'GetImage']);
  });

  it('with --json the report still goes to stdout, and the one line to stderr', async () => {
    box.faults.set({ errors: [{ operation: 'GetImage', code: 'AccessDeniedException', status: 403 }] });
    const { code, out, errLines } = await cli(['reconcile', arn, '--json', ...at()]);
    expect(code).toBe(5);
    expect(JSON.parse(out)).toMatchObject({ outcome: 'failed', error: { kind: 'access-denied', code: 'AccessDeniedException' } });
    expect(errLines).toHaveLength(1);
  });

  it('an image build that does not exist: one line, exit 6 (not found), not an empty table', async () => {
    const capitalised = await cli(['status', arn.replace('golden-windows', 'Golden-Windows'), ...at()]);
    expect(capitalised).toMatchObject({ code: 2, out: '' });
    expect(capitalised.errLines).toEqual([
      `error: no image build ARN has capitals in its image name (Image Builder writes names in lower case): did you mean ${arn}?`,
    ]);
    const missing = arn.replace(/\/1$/, '/99');
    const { code, out, errLines } = await cli(['status', missing, ...at()]);
    expect(code).toBe(6);
    expect(out).toBe('');
    expect(errLines).toHaveLength(1);
    expect(errLines[0]).toMatch(
      new RegExp(
        `^error: no such image build in 111111111111/us-east-1: ${missing.replaceAll('/', '\\/')} \\(ResourceNotFoundException\\)$`,
      ),
    );
  });

  it("the profile's region is used when neither --region nor AWS_REGION is set", async () => {
    awsFiles(
      '[profile sandbox-eu]\nregion = eu-west-1\n',
      '[sandbox-eu]\naws_access_key_id = 111111111111\naws_secret_access_key = sandbox\n',
    );
    vi.stubEnv('AWS_REGION', '');
    vi.stubEnv('AWS_ACCESS_KEY_ID', '');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', '');
    const before = box.server.requests.length;
    const { code } = await cli(['status', arn, '--endpoint-url', box.url, '--profile', 'sandbox-eu']);
    expect(code).toBe(3);
    const identity = box.server.requests.slice(before).find((r) => r.operation === 'GetCallerIdentity');
    expect(identity).toMatchObject({ account: '111111111111', region: 'eu-west-1' });
  });

  it('reconcile --publish without an event bus says so and changes nothing', async () => {
    const before = box.server.requests.length;
    const { code, errLines } = await cli(['reconcile', arn, '--publish', ...at()]);
    expect(code).toBe(2);
    expect(errLines).toEqual([
      "error: --publish needs an event bus: set RECONCILER_EVENT_BUS to its name (the deployment's eventBusName param; RECONCILER_RECHECK_QUEUE_URL for rechecks)",
    ]);
    expect(box.server.requests.length).toBe(before);
  });

  it('status fits an 80-column terminal without splitting an ID; not a terminal, it is never wrapped', async () => {
    const narrow = await cli(['status', arn, ...at()], 80);
    expect(narrow.code).toBe(3);
    expect(Math.max(...narrow.out.split('\n').map(visibleWidth))).toBeLessThanOrEqual(80);
    // too wide for a table at 80: one line per cell under its account, each AMI whole on its cell's line
    expect(narrow.out).toMatch(/^222222222222\n {2}ap-northeast-1 +drift +ami-[0-9a-f]{17} +AMI✓ name✓ tags≠$/m);
    expect(narrow.out.match(/^ {2}[a-z]{2}-[a-z]+-\d +drift +ami-[0-9a-f]{17} /gm)).toHaveLength(8);
    for (const line of narrow.out.split('\n')) expect(line).not.toMatch(/(^|\W)(ami|lt)-[0-9a-f]{1,16}$/); // no ID cut at a line's end
    // output that is not a terminal (no columns, no COLUMNS): as wide as its content, so grep finds whole rows
    const piped = await cli(['status', arn, ...at()]);
    expect(Math.max(...piped.out.split('\n').map(visibleWidth))).toBeGreaterThan(80);
    expect(piped.out).toMatch(/│ 444444444444 │ · +│ · +│ drift +│ · +│/);
    const ami = /ami-[0-9a-f]{17}/.exec(narrow.out)?.[0] ?? '';
    expect(piped.out.split('\n').filter((line) => line.includes(ami)).length).toBeGreaterThan(0);
    const wide = await cli(['status', arn, '--wide', ...at()], 80);
    expect(wide.out).toBe(piped.out);
  });

  it('reconcile --plan fits COLUMNS when it is set, never splitting an ID, a region or a tag key', async () => {
    vi.stubEnv('COLUMNS', '100');
    const { code, out } = await cli(['reconcile', arn, '--plan', ...at()]);
    expect(code).toBe(3);
    expect(out).toMatch(/create-tags/);
    const wide = await cli(['reconcile', arn, '--plan', '--wide', ...at()]);
    expect(Math.max(...out.split('\n').map(visibleWidth))).toBeLessThan(Math.max(...wide.out.split('\n').map(visibleWidth)));
    // every ID, region and tag key of the wide output is whole in the fitted one
    const words = (text: string) =>
      new Set(text.match(/\b(ami|lt)-[0-9a-f]{17}\b|[a-z]{2}-[a-z]+-\d\/\d{12}|imagebuilder-reconciler:source-image/g));
    expect(words(out)).toStrictEqual(words(wide.out));
  });

  it('a sandbox port already taken is bad input, said once', async () => {
    const port = new URL(box.url).port;
    const { code, errLines } = await cli(['sandbox', '--port', port, '--no-wire']);
    expect(code).toBe(2);
    expect(errLines).toEqual([`error: port ${port} is in use (is another sandbox running?): stop it, or pass --port <another>`]);
  });
});

describe('bad input of the demo and the sandbox exits 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibr-scenario-'));
  const notJson = join(dir, 'not.json');
  const incomplete = join(dir, 'incomplete.json');
  const refused = join(dir, 'refused.json');
  writeFileSync(notJson, '{');
  writeFileSync(incomplete, '{"name":"x"}');
  // the sandbox refuses a distribution with no regions, as Image Builder does
  writeFileSync(
    refused,
    JSON.stringify({
      name: 'refused',
      defaultAccount: '111111111111',
      accounts: [],
      regions: ['us-east-1'],
      imagebuilder: { distributions: [{ name: 'd', distributions: [] }] },
    }),
  );

  it.each([
    [['demo', '--scenario', '/nonexistent/scenario.json'], /^error: cannot read scenario \/nonexistent\/scenario\.json: ENOENT/],
    [['sandbox', '--no-wire', '--port', '1', '--scenario', notJson], /^error: cannot read scenario .*not\.json: .*JSON/],
    [
      ['sandbox', '--no-wire', '--port', '1', '--scenario', incomplete],
      /^error: scenario .*incomplete\.json needs name, defaultAccount, accounts and regions$/,
    ],
    [['demo', '--scenario', refused], /^error: scenario refused: /],
    [['sandbox', '--port', '99999'], /^error: option '--port <port>' argument '99999' is invalid\. expected a port from 1 to 65535/],
    [['sandbox', '--port', 'http'], /^error: option '--port <port>' argument 'http' is invalid/],
    [['demo', '--speed', '0'], /^error: option '--speed <factor>' argument '0' is invalid/],
  ])('%j', async (args, message) => {
    const { code, out, errLines } = await cli(args);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(errLines).toHaveLength(1);
    expect(errLines[0]).toMatch(message);
    expect(errLines[0]).not.toMatch(/Error: Error:|ScenarioError/);
  });
});

describe('the rest of the command line', () => {
  it('--version prints the version from package.json and exits 0', async () => {
    const { code, out } = await cli(['--version']);
    expect(code).toBe(0);
    expect(out.trim()).toBe(pkg.version);
  });

  it('an error line names its code once', () => {
    expect(oneLine({ kind: 'error', code: 'EADDRINUSE', message: 'listen EADDRINUSE: address already in use 127.0.0.1:4566' })).toBe(
      'listen EADDRINUSE: address already in use 127.0.0.1:4566',
    );
    expect(oneLine({ kind: 'error', code: 'Error', message: 'something broke' })).toBe('something broke');
    expect(oneLine({ kind: 'throttled', code: 'RequestLimitExceeded', message: 'Request limit exceeded.' })).toBe(
      'RequestLimitExceeded: Request limit exceeded.',
    );
  });
});
