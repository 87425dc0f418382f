/**
 * One source of truth for validation: the constraints of Image Builder's service model
 * (src/lib/preflight/model/imagebuilder-model.ts and the emulator's copy, both generated from the model),
 * checked against the installed SDK's schemas, and seeded: for every constraint of every member, a document that breaks it, which
 * the model validator, `lint` and the sandbox must all reject at the same place.
 */
import * as sdk from '@aws-sdk/client-imagebuilder';
import { CreateDistributionConfigurationCommand, UpdateDistributionConfigurationCommand } from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { lintDistributionConfiguration } from '../../src/lib/preflight/lint.ts';
import { MODEL_SOURCE as EMULATOR_MODEL_SOURCE, SHAPES as EMULATOR_SHAPES } from '../../sandbox/emulator/model/imagebuilder-model.ts';
import { MODEL_SOURCE, SHAPES } from '../../src/lib/preflight/model/imagebuilder-model.ts';
import { validateAgainstModel } from '../../src/lib/preflight/model/validate.ts';
import { EXAMPLES, seeds } from '../helpers/model-seeds.ts';
import { clients, useSandbox } from '../helpers/sandbox.ts';

/** The SDK's static structure schema: [3, namespace, name, traits, member names, member schemas, required count]. */
type StaticStruct = [number, string, string, unknown, string[], unknown[], number?];

const exported = sdk as unknown as Record<string, unknown>;

describe('the generated model table', () => {
  it('is the same in lint and in the emulator (scripts/gen-imagebuilder-model.mjs writes both)', () => {
    expect(EMULATOR_MODEL_SOURCE).toBe(MODEL_SOURCE);
    expect(EMULATOR_SHAPES).toStrictEqual(SHAPES);
  });

  it("has the members and required members of the installed SDK's schemas for every structure", () => {
    const structures = Object.entries(SHAPES).filter(([, s]) => s.type === 'structure');
    expect(structures.length).toBeGreaterThan(10);
    for (const [name, s] of structures) {
      if (s.type !== 'structure') continue;
      const schema = exported[`${name}$`] as StaticStruct | undefined;
      expect(schema, `${name}$ in @aws-sdk/client-imagebuilder`).toBeDefined();
      const [, , , , members = [], , requiredCount = 0] = schema ?? [];
      expect(Object.keys(s.members).sort(), name).toStrictEqual([...members].sort());
      // the SDK lists the required members first and counts them, leaving out the idempotency tokens it fills in
      const required = (s.required ?? []).filter((m) => !(s.idempotencyTokens ?? []).includes(m));
      expect(required.sort(), `${name} required`).toStrictEqual(members.slice(0, requiredCount).sort());
    }
  });

  it('has what the reconciler reads from a distribution, in the installed SDK (3.1046.0, the newest Image Builder client)', () => {
    const [, , , , members = []] = (exported.Distribution$ as StaticStruct | undefined) ?? [];
    expect(members).toEqual(
      expect.arrayContaining([
        'region',
        'amiDistributionConfiguration',
        'launchTemplateConfigurations',
        'fastLaunchConfigurations',
        'ssmParameterConfigurations',
        's3ExportConfiguration',
        'licenseConfigurationArns',
        'containerDistributionConfiguration',
      ]),
    );
  });

  it("has the enum values of the installed SDK's enums", () => {
    const enums = Object.entries(SHAPES).filter(([, s]) => s.type === 'string' && s.enum !== undefined);
    expect(enums.map(([name]) => name).sort()).toStrictEqual([
      'ContainerRepositoryService',
      'DiskImageFormat',
      'OnWorkflowFailure',
      'SsmParameterDataType',
      'WorkflowStepActionType',
      'WorkflowType',
    ]);
    for (const [name, s] of enums) {
      const values = exported[name] as Record<string, string> | undefined;
      expect(values, name).toBeDefined();
      expect(Object.values(values ?? {}).sort()).toStrictEqual([...(s.type === 'string' ? (s.enum ?? []) : [])].sort());
    }
  });

  it('has an example of every patterned string that matches its pattern', () => {
    for (const [name, s] of Object.entries(SHAPES)) {
      if (s.type !== 'string' || s.pattern === undefined) continue;
      expect(EXAMPLES[name], name).toMatch(new RegExp(s.pattern));
    }
  });
});

describe("every seed of the model's constraints", () => {
  // no seed leaves out clientToken: the SDK and the AWS CLI fill it in, and lint does not ask for it
  const create = seeds('CreateDistributionConfigurationRequest', { skipTokens: true });
  const update = seeds('UpdateDistributionConfigurationRequest', { skipTokens: true });
  const stored = seeds('DistributionConfiguration', { skipTokens: true });

  it('requires clientToken of a request that reaches the service without one', () => {
    const { clientToken: _, ...document } = create.base as Record<string, unknown>;
    expect(validateAgainstModel(document, 'CreateDistributionConfigurationRequest').map((v) => `${v.constraint} ${v.path}`)).toStrictEqual([
      'required clientToken',
    ]);
    expect(validateAgainstModel(document, 'CreateDistributionConfigurationRequest', { tokensFilled: true })).toStrictEqual([]);
  });

  it('covers the constraints the issue names', () => {
    const names = create.seeds.map((s) => `${s.constraint} ${s.path}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'enum distributions[0].s3ExportConfiguration.diskImageFormat',
        'pattern distributions[0].amiDistributionConfiguration.launchPermission.organizationArns[0]',
        'pattern distributions[0].amiDistributionConfiguration.launchPermission.organizationalUnitArns[0]',
        'pattern distributions[0].amiDistributionConfiguration.amiTags.aws:reserved',
        'pattern distributions[0].licenseConfigurationArns[0]',
        'required distributions[0].fastLaunchConfigurations[0].enabled',
        'required distributions[0].s3ExportConfiguration.s3Bucket',
        'required distributions[0].containerDistributionConfiguration.targetRepository',
        'length description',
        'pattern distributions[0].amiDistributionConfiguration.launchPermission.userIds[0]',
      ]),
    );
    expect(update.seeds.map((s) => `${s.constraint} ${s.path}`)).toContain('pattern distributionConfigurationArn');
    expect(create.seeds.length).toBeGreaterThan(50);
  });

  it.each([
    ['CreateDistributionConfigurationRequest', create],
    ['UpdateDistributionConfigurationRequest', update],
    ['DistributionConfiguration', stored],
  ] as const)(
    'the full valid %s breaks nothing; each seed breaks its constraint where it was put, for the validator and for lint',
    (root, { base, seeds: all }) => {
      expect(validateAgainstModel(base, root)).toStrictEqual([]);
      const shape =
        root === 'UpdateDistributionConfigurationRequest' ? 'update' : root === 'DistributionConfiguration' ? 'stored' : 'create';
      expect(lintDistributionConfiguration(base, { shape }).filter((f) => f.rule.startsWith('model-'))).toStrictEqual([]);
      for (const seed of all) {
        const found = validateAgainstModel(seed.document, root);
        expect(
          found.map((v) => `${v.constraint} ${v.path}`),
          `${seed.constraint} ${seed.path}`,
        ).toContain(`${seed.constraint} ${seed.path}`);
        const findings = lintDistributionConfiguration(seed.document, { shape });
        const finding = findings.find((f) => f.rule === `model-${seed.constraint}` && f.path === seed.path);
        expect(finding, `lint: ${seed.constraint} ${seed.path}`).toMatchObject({ severity: 'error', fix: expect.stringMatching(/\w/) });
      }
    },
  );

  describe('the sandbox', () => {
    let box: Sandbox;
    const sandboxes = useSandbox();
    beforeAll(async () => {
      box = await sandboxes.start();
    });

    it('rejects each seed of create and update with ValidationException naming the member, as the service does', async () => {
      const ib = clients(box.url, '111111111111').imagebuilder;
      // the SDK sends what it is given (it drops no member of the model and checks no constraint)
      const send = (root: 'create' | 'update', document: unknown) =>
        root === 'create'
          ? ib.send(new CreateDistributionConfigurationCommand(document as never))
          : ib.send(new UpdateDistributionConfigurationCommand(document as never));
      for (const [root, { seeds: all }] of [
        ['create', create],
        ['update', update],
      ] as const) {
        for (const seed of all) {
          await expect(send(root, seed.document), `${seed.constraint} ${seed.path}`).rejects.toMatchObject({
            name: 'ValidationException',
            $metadata: { httpStatusCode: 400 },
            message: expect.stringContaining(`at '${seed.servicePath}' failed to satisfy constraint`),
          });
        }
      }
    });

    it('accepts the full valid document and then a valid update of it', async () => {
      const ib = clients(box.url, '111111111111').imagebuilder;
      // the one rule of EC2 the full document breaks: a Fast Launch template by id and by name
      const document = structuredClone(create.base) as {
        distributions: { fastLaunchConfigurations: { launchTemplate: Record<string, unknown> }[] }[];
      };
      for (const d of document.distributions) for (const fl of d.fastLaunchConfigurations) delete fl.launchTemplate.launchTemplateName;
      const created = await ib.send(new CreateDistributionConfigurationCommand(document as never));
      expect(created.distributionConfigurationArn).toBe('arn:aws:imagebuilder:us-east-1:111111111111:distribution-configuration/golden');
      const { name: _name, tags: _tags, ...update } = document as unknown as Record<string, unknown>;
      await expect(
        ib.send(
          new UpdateDistributionConfigurationCommand({
            ...update,
            distributionConfigurationArn: created.distributionConfigurationArn,
          } as never),
        ),
      ).resolves.toMatchObject({ distributionConfigurationArn: created.distributionConfigurationArn });
    });
  });
});
