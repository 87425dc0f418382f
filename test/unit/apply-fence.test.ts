/**
 * The re-read right before a pointer write (apply.ts): which AMI counts as newer, and what is skipped.
 */
import { ModifyLaunchTemplateCommand } from '@aws-sdk/client-ec2';
import { GetImageCommand } from '@aws-sdk/client-imagebuilder';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { apply } from '../../src/lib/reconcile/apply.ts';
import type { Action, Plan } from '../../src/lib/reconcile/types.ts';
import { ec2Image, testDeps } from '../helpers/factories.ts';
import { type Mocks, OWN, type World, installWorld, newWorld } from '../helpers/world.ts';

const KEY = `${OWN}/us-east-1`;
const OURS = 'ami-00000000000000001';
const OTHER = 'ami-00000000000000002';
const BUILD = (n: number, version = '1.0.0', name = 'golden') => `arn:aws:imagebuilder:us-east-1:${OWN}:image/${name}/${version}/${n}`;
const cellRef = { region: 'us-east-1', accountId: OWN };

function image(id: string, build: string | undefined, created: string) {
  return { ...ec2Image(id, OWN, build === undefined ? {} : { Ec2ImageBuilderArn: build }), CreationDate: created };
}

function putParameter(): Action {
  return {
    id: 'p',
    kind: 'put-parameter',
    cell: cellRef,
    target: '/golden/latest',
    reason: 'r',
    name: '/golden/latest',
    value: OURS,
    dataType: 'aws:ec2:image',
  };
}

function updateTemplate(): Action {
  return {
    id: 't',
    kind: 'update-launch-template',
    cell: cellRef,
    target: 'lt-1',
    reason: 'r',
    launchTemplateId: 'lt-1',
    imageId: OURS,
    create: undefined,
    existingVersion: 2,
    setDefault: true,
  };
}

function planOf(...actions: Action[]): Plan {
  return {
    cells: [{ key: 'us-east-1/x', region: 'us-east-1', accountId: OWN, origin: 'owner', imageId: OURS, checks: [], actions }],
    imageActions: [],
    supersededBy: undefined,
  };
}

async function run(...actions: Action[]) {
  return apply(planOf(...actions), testDeps().clients, { mode: 'apply', imageArn: BUILD(3) });
}

describe('the pre-write re-read', () => {
  let world: World;
  let mocks: Mocks;

  beforeEach(() => {
    world = newWorld();
    mocks = installWorld(world);
  });
  afterEach(() => {
    for (const mock of Object.values(mocks)) mock.restore();
  });

  // the builds' dateCreated (GetImage) order them; the AMIs' own CreationDate only when a build cannot be read
  it.each([
    [
      'a build created later with a lower version (a pipeline pointed back)',
      BUILD(1, '0.9.0'),
      '2026-11-29T13:00:00.000Z',
      '2026-11-28T10:00:00.000Z',
      true,
    ],
    ['a build created earlier with a higher version', BUILD(1, '1.1.0'), '2026-11-29T11:00:00.000Z', '2026-11-30T10:00:00.000Z', false],
    ['a higher build number created earlier', BUILD(4), '2026-11-29T11:00:00.000Z', '2026-11-30T10:00:00.000Z', false],
    [
      'a build created in the same millisecond with a higher build number (the tie-break)',
      BUILD(4),
      '2026-11-29T12:00:00.000Z',
      '2026-11-28T10:00:00.000Z',
      true,
    ],
    ["another image's build, created later", BUILD(9, '9.0.0', 'other'), '2026-11-29T13:00:00.000Z', '2026-11-28T10:00:00.000Z', true],
    [
      'a build Image Builder no longer has, its AMI created later (creation time decides)',
      BUILD(5),
      undefined,
      '2026-11-30T10:00:00.000Z',
      true,
    ],
    ['a build Image Builder no longer has, its AMI created earlier', BUILD(5), undefined, '2026-11-28T10:00:00.000Z', false],
    ['an untagged AMI created earlier', undefined, undefined, '2026-11-28T10:00:00.000Z', false],
    ['an untagged AMI created later', undefined, undefined, '2026-11-30T10:00:00.000Z', true],
  ])('the parameter holds %s: superseded = %s', async (_name, build, buildCreated, amiCreated, newer) => {
    world.imagebuilder[BUILD(3)] = { arn: BUILD(3), dateCreated: '2026-11-29T12:00:00.000Z' };
    if (build !== undefined && buildCreated !== undefined) world.imagebuilder[build] = { arn: build, dateCreated: buildCreated };
    world.images[KEY] = [image(OURS, BUILD(3), '2026-11-29T12:00:00.000Z'), image(OTHER, build, amiCreated)];
    world.parameters[`${KEY}//golden/latest`] = OTHER;
    const [outcome] = await run(putParameter());
    if (newer) {
      expect(outcome).toMatchObject({
        status: 'skipped',
        resultingState: 'superseded',
        detail: expect.stringMatching(new RegExp(`^superseded: parameter /golden/latest already names ${OTHER}`)),
      });
      expect(mocks.ssm).not.toHaveReceivedCommand(PutParameterCommand);
      expect(world.parameters[`${KEY}//golden/latest`]).toBe(OTHER);
    } else {
      expect(outcome).toMatchObject({ status: 'applied' });
      expect(world.parameters[`${KEY}//golden/latest`]).toBe(OURS);
    }
  });

  it("writes over a revoked build's AMI, newer or not, and never writes once its own build is revoked", async () => {
    world.imagebuilder[BUILD(3)] = { arn: BUILD(3), dateCreated: '2026-11-29T12:00:00.000Z' };
    world.imagebuilder[BUILD(4)] = {
      arn: BUILD(4),
      dateCreated: '2026-11-29T13:00:00.000Z',
      tags: { 'imagebuilder-reconciler:revoked': '2026-11-30T00:00:00.000Z CVE' },
    };
    world.images[KEY] = [image(OURS, BUILD(3), '2026-11-29T12:00:00.000Z'), image(OTHER, BUILD(4), '2026-11-29T13:00:00.000Z')];
    world.parameters[`${KEY}//golden/latest`] = OTHER;
    expect((await run(putParameter()))[0]).toMatchObject({ status: 'applied' });
    expect(world.parameters[`${KEY}//golden/latest`]).toBe(OURS);
    // this run's own build revoked meanwhile: the mark is read again right before the write
    world.parameters[`${KEY}//golden/latest`] = OTHER;
    world.imagebuilder[BUILD(3)] = { ...world.imagebuilder[BUILD(3)], tags: { 'imagebuilder-reconciler:revoked': 'now' } };
    const [outcome] = await apply(planOf(putParameter(), updateTemplate()), testDeps().clients, {
      mode: 'apply',
      imageArn: BUILD(3),
      imageCreated: '2026-11-29T12:00:00.000Z',
    });
    expect(outcome).toMatchObject({
      status: 'skipped',
      resultingState: 'revoked',
      detail: expect.stringMatching(/^revoked: this build was revoked/),
    });
    expect(world.parameters[`${KEY}//golden/latest`]).toBe(OTHER);
  });

  it("reads each build's dateCreated once per run, and its own not at all when the run knows it", async () => {
    world.imagebuilder[BUILD(4)] = { arn: BUILD(4), dateCreated: '2026-11-29T13:00:00.000Z' };
    world.images[KEY] = [image(OURS, BUILD(3), '2026-11-29T12:00:00.000Z'), image(OTHER, BUILD(4), '2026-11-29T13:00:00.000Z')];
    world.parameters[`${KEY}//golden/latest`] = OTHER;
    world.parameters[`${KEY}//golden/other`] = OTHER;
    const second: Action = {
      id: 'q',
      kind: 'put-parameter',
      cell: cellRef,
      target: '/golden/other',
      reason: 'r',
      name: '/golden/other',
      value: OURS,
      dataType: 'aws:ec2:image',
    };
    const outcomes = await apply(planOf(putParameter()), testDeps().clients, {
      mode: 'apply',
      imageArn: BUILD(3),
      imageCreated: '2026-11-29T12:00:00.000Z',
    });
    const more = await apply(planOf(putParameter(), second), testDeps().clients, {
      mode: 'apply',
      imageArn: BUILD(3),
      imageCreated: '2026-11-29T12:00:00.000Z',
    });
    expect([...outcomes, ...more].map((o) => o.resultingState)).toStrictEqual(['superseded', 'superseded', 'superseded']);
    // one GetImage per run for BUILD(4), none for this run's own build
    expect(mocks.imagebuilder.commandCalls(GetImageCommand).map((c) => c.args[0].input.imageBuildVersionArn)).toStrictEqual([
      BUILD(4),
      BUILD(4),
    ]);
  });

  it("fails the write, rather than guess, when a build's dateCreated cannot be read (throttled)", async () => {
    world.images[KEY] = [image(OURS, BUILD(3), '2026-11-29T12:00:00.000Z'), image(OTHER, BUILD(4), '2026-11-28T13:00:00.000Z')];
    world.parameters[`${KEY}//golden/latest`] = OTHER;
    mocks.imagebuilder
      .on(GetImageCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }));
    const [outcome] = await apply(planOf(putParameter()), testDeps().clients, {
      mode: 'apply',
      imageArn: BUILD(3),
      imageCreated: '2026-11-29T12:00:00.000Z',
    });
    expect(outcome).toMatchObject({ status: 'failed', error: { kind: 'throttled' } });
    expect(world.parameters[`${KEY}//golden/latest`]).toBe(OTHER);
  });

  it('writes over an AMI it cannot see (gone, or not shared with the account)', async () => {
    world.images[KEY] = [image(OURS, BUILD(3), '2026-11-29T12:00:00.000Z')];
    world.parameters[`${KEY}//golden/latest`] = OTHER;
    expect((await run(putParameter()))[0]?.status).toBe('applied');
  });

  it('does not write a parameter that already holds its AMI', async () => {
    world.parameters[`${KEY}//golden/latest`] = OURS;
    expect((await run(putParameter()))[0]).toMatchObject({ status: 'already-done' });
    expect(mocks.ssm).not.toHaveReceivedCommand(PutParameterCommand);
  });

  it("once the template default is superseded, leaves the cell's other pointers to the newer run", async () => {
    world.imagebuilder[BUILD(3)] = { arn: BUILD(3), dateCreated: '2026-11-29T12:00:00.000Z' };
    world.imagebuilder[BUILD(4)] = { arn: BUILD(4), dateCreated: '2026-11-29T13:00:00.000Z' };
    world.images[KEY] = [image(OURS, BUILD(3), '2026-11-29T12:00:00.000Z'), image(OTHER, BUILD(4), '2026-11-29T13:00:00.000Z')];
    // the newer build's version 3 is the default; version 4 (latest) is a copy of the old one
    world.templates[KEY] = [
      {
        id: 'lt-1',
        name: 'web',
        defaultVersion: 3,
        versions: [
          { number: 1, imageId: 'ami-0' },
          { number: 2, imageId: OURS },
          { number: 3, imageId: OTHER },
          { number: 4, imageId: 'ami-0' },
        ],
      },
    ];
    world.parameters[`${KEY}//golden/latest`] = 'ami-0';
    const outcomes = await run(updateTemplate(), putParameter());
    expect(outcomes.map((o) => [o.action.kind, o.status, o.resultingState])).toStrictEqual([
      ['update-launch-template', 'skipped', 'superseded'],
      ['put-parameter', 'skipped', 'superseded'],
    ]);
    expect(outcomes[0]?.detail).toMatch(
      new RegExp(`^superseded: launch template lt-1 already names ${OTHER} of newer build ${BUILD(4).replaceAll('.', '\\.')}`),
    );
    expect(mocks.ec2).not.toHaveReceivedCommand(ModifyLaunchTemplateCommand);
    expect(mocks.ssm).not.toHaveReceivedCommand(PutParameterCommand);
  });
});
