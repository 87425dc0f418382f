/**
 * Golden cases from AWS's documented answers: requests that break a constraint the Image Builder API
 * Reference documents, each with the ValidationException message the service answers and the finding `lint`
 * reports, and the largest request each constraint still allows. They hold the emulator's validator
 * (sandbox/emulator/model/) and lint's (src/lib/preflight/model/) to AWS's words, not to each other: the two
 * model tables are separate copies, so a constraint lost from either one fails here.
 *
 * Constraints, from the API Reference (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/):
 * - CreateDistributionConfiguration: `name` "Pattern: ^[-_A-Za-z-0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z-0-9]$"
 *   (at most 128 characters); `description` "Length Constraints: Minimum length of 1. Maximum length of 1024.";
 *   `tags` "Map Entries: Maximum number of 50 items." with keys "Maximum length of 128" and
 *   "Pattern: ^(?!aws:)[a-zA-Z0-9\s_.:/=+\-@]*$".
 * - AmiDistributionConfiguration: `name` "Minimum length of 1. Maximum length of 127."; `amiTags`
 *   "Map Entries: Maximum number of 50 items." (keys as for `tags`).
 * - S3ExportConfiguration: `diskImageFormat` "Valid Values: VMDK | RAW | VHD".
 * The message is the one every AWS service answers a request its model refuses (Common Errors,
 * ValidationException, https://docs.aws.amazon.com/imagebuilder/latest/APIReference/CommonErrors.html):
 * "1 validation error detected: Value '…' at '<member path>' failed to satisfy constraint: <constraint>", the
 * member path with list items as `<list>.<n>.member` counted from 1.
 */
import { CreateDistributionConfigurationCommand } from '@aws-sdk/client-imagebuilder';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../../sandbox/emulator/index.ts';
import { validateAgainstModel, validationMessage } from '../../sandbox/emulator/model/validate.ts';
import { lintDistributionConfiguration } from '../../src/lib/preflight/lint.ts';
import { clients } from '../helpers/sandbox.ts';

const ACCOUNT = '111111111111';

/** `n` tags: team0=x … */
function tags(n: number, key = (i: number) => `team${i}`): Record<string, string> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [key(i), 'x']));
}

/** A create request with one us-east-1 distribution, changed by each case. */
function request(
  change: {
    name?: string;
    description?: string;
    tags?: Record<string, string>;
    ami?: Record<string, unknown>;
    distribution?: Record<string, unknown>;
  } = {},
) {
  return {
    name: change.name ?? 'golden',
    ...(change.description === undefined ? {} : { description: change.description }),
    ...(change.tags === undefined ? {} : { tags: change.tags }),
    clientToken: 'golden-token',
    distributions: [
      {
        region: 'us-east-1',
        amiDistributionConfiguration: { name: 'golden-{{imagebuilder:buildDate}}', ...change.ami },
        ...change.distribution,
      },
    ],
  };
}

interface Refused {
  what: string;
  document: ReturnType<typeof request>;
  /** the service's message: exact, or a pattern where it quotes a long value (a map of 51 tags) */
  message: string | RegExp;
  lint: { rule: string; path: string };
}

const AMI_TAGS_AT = 'distributions.1.member.amiDistributionConfiguration.amiTags';
const NAME_PATTERN = '^[-_A-Za-z-0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z-0-9]$';
const TAG_KEY_PATTERN = '^(?!aws:)[a-zA-Z0-9\\s_.:/=+\\-@]*$';

/** A message quoting a map, which the case need not spell out. */
function quotingAMap(at: string, constraint: string): RegExp {
  const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(
    `^1 validation error detected: Value '\\{[^']*\\}' at '${escapeRegExp(at)}' failed to satisfy constraint: ${escapeRegExp(constraint)}$`,
  );
}

const REFUSED: Refused[] = [
  {
    what: '51 AMI tags (amiTags: at most 50)',
    document: request({ ami: { amiTags: tags(51) } }),
    message: quotingAMap(AMI_TAGS_AT, 'Member must have length less than or equal to 50'),
    lint: { rule: 'model-length', path: 'distributions[0].amiDistributionConfiguration.amiTags' },
  },
  {
    what: '51 tags on the configuration (tags: at most 50)',
    document: request({ tags: tags(51) }),
    message: quotingAMap('tags', 'Member must have length less than or equal to 50'),
    lint: { rule: 'model-length', path: 'tags' },
  },
  {
    what: 'an AMI tag key in the aws: namespace',
    document: request({ ami: { amiTags: { 'aws:team': 'x' } } }),
    message: `1 validation error detected: Value '{aws:team=x}' at '${AMI_TAGS_AT}' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: ${TAG_KEY_PATTERN}]`,
    lint: { rule: 'model-pattern', path: 'distributions[0].amiDistributionConfiguration.amiTags.aws:team' },
  },
  {
    what: 'an AMI tag key of 129 characters (at most 128)',
    document: request({ ami: { amiTags: { ['k'.repeat(129)]: 'x' } } }),
    message: `1 validation error detected: Value '{${'k'.repeat(129)}=x}' at '${AMI_TAGS_AT}' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128]`,
    lint: { rule: 'model-length', path: `distributions[0].amiDistributionConfiguration.amiTags.${'k'.repeat(129)}` },
  },
  {
    what: 'an unknown diskImageFormat (QCOW2)',
    document: request({ distribution: { s3ExportConfiguration: { roleName: 'vmimport', diskImageFormat: 'QCOW2', s3Bucket: 'exports' } } }),
    message:
      "1 validation error detected: Value 'QCOW2' at 'distributions.1.member.s3ExportConfiguration.diskImageFormat' failed to satisfy constraint: Member must satisfy enum value set: [VMDK, RAW, VHD]",
    lint: { rule: 'model-enum', path: 'distributions[0].s3ExportConfiguration.diskImageFormat' },
  },
  {
    what: 'a configuration name of 129 characters (at most 128)',
    document: request({ name: 'n'.repeat(129) }),
    message: `1 validation error detected: Value '${'n'.repeat(129)}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ${NAME_PATTERN}`,
    lint: { rule: 'model-pattern', path: 'name' },
  },
  {
    what: 'an AMI name of 128 characters (at most 127)',
    document: request({ ami: { name: 'a'.repeat(128) } }),
    message: `1 validation error detected: Value '${'a'.repeat(128)}' at 'distributions.1.member.amiDistributionConfiguration.name' failed to satisfy constraint: Member must have length less than or equal to 127`,
    lint: { rule: 'model-length', path: 'distributions[0].amiDistributionConfiguration.name' },
  },
  {
    what: 'a description of 1,025 characters (at most 1,024)',
    document: request({ description: 'd'.repeat(1025) }),
    message: `1 validation error detected: Value '${'d'.repeat(1025)}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 1024`,
    lint: { rule: 'model-length', path: 'description' },
  },
  {
    what: 'an empty description (at least 1)',
    document: request({ description: '' }),
    message:
      "1 validation error detected: Value '' at 'description' failed to satisfy constraint: Member must have length greater than or equal to 1",
    lint: { rule: 'model-length', path: 'description' },
  },
];

/** The largest requests the same constraints allow: refused by neither. */
const ALLOWED: { what: string; document: ReturnType<typeof request> }[] = [
  {
    what: '50 AMI tags and 50 tags, keys of 128 characters',
    document: request({ name: 'golden-max-tags', ami: { amiTags: tags(50, (i) => `${i}`.padEnd(128, 'k')) }, tags: tags(50) }),
  },
  {
    what: 'a name of 128 characters, an AMI name of 127, a description of 1,024',
    document: request({ name: 'n'.repeat(128), ami: { name: 'a'.repeat(127) }, description: 'd'.repeat(1024) }),
  },
  {
    what: 'a diskImageFormat of the set (VHD)',
    document: request({
      name: 'golden-vhd',
      distribution: { s3ExportConfiguration: { roleName: 'vmimport', diskImageFormat: 'VHD', s3Bucket: 'exports' } },
    }),
  },
];

function matches(message: string, want: string | RegExp): void {
  if (typeof want === 'string') expect(message).toBe(want);
  else expect(message).toMatch(want);
}

describe("golden cases from AWS's documented answers", () => {
  describe("the emulator's model validator", () => {
    it.each(REFUSED)("refuses $what with the service's message", ({ document, message }) => {
      const violations = validateAgainstModel(document, 'CreateDistributionConfigurationRequest');
      expect(violations.length).toBeGreaterThan(0);
      matches(validationMessage(violations), message);
    });

    it.each(ALLOWED)('allows $what', ({ document }) => {
      expect(validateAgainstModel(document, 'CreateDistributionConfigurationRequest')).toStrictEqual([]);
    });
  });

  describe('lint', () => {
    it.each(REFUSED)('reports $what as an error where it is', ({ document, lint }) => {
      const findings = lintDistributionConfiguration(document, { shape: 'create' });
      expect(findings.filter((f) => f.rule.startsWith('model-')).map((f) => `${f.severity} ${f.rule} ${f.path}`)).toStrictEqual([
        `error ${lint.rule} ${lint.path}`,
      ]);
    });

    it.each(ALLOWED)('finds nothing of the model in $what', ({ document }) => {
      expect(lintDistributionConfiguration(document, { shape: 'create' }).filter((f) => f.rule.startsWith('model-'))).toStrictEqual([]);
    });
  });

  describe('the emulator, through the SDK', () => {
    let emulator: Emulator;
    beforeAll(async () => {
      emulator = await startEmulator({
        port: 0,
        defaultAccount: ACCOUNT,
        accounts: [ACCOUNT],
        regions: ['us-east-1'],
        clock: { speed: 1, start: Date.now() },
      });
    });
    afterAll(async () => {
      emulator.clock.stop();
      await emulator.server.close();
    });

    it("answers each refused request with ValidationException (HTTP 400) and the service's message, and creates each allowed one", async () => {
      const ib = clients(emulator.url, ACCOUNT).imagebuilder;
      for (const { what, document, message } of REFUSED) {
        const error: unknown = await ib.send(new CreateDistributionConfigurationCommand(document)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, what).toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
        matches(error instanceof Error ? error.message : '', message);
      }
      for (const { what, document } of ALLOWED) {
        const created = await ib.send(
          new CreateDistributionConfigurationCommand({ ...document, clientToken: `allowed-${document.name.slice(0, 20)}` }),
        );
        expect(created.distributionConfigurationArn, what).toMatch(/:distribution-configuration\//);
      }
    });
  });
});
