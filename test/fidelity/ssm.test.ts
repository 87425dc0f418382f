/**
 * SSM Parameter Store's names and data types as AWS refuses them (issue 26, item 6). Sources: Systems Manager
 * User Guide, "Parameter name requirements and constraints"
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-parameter-name-constraints.html):
 * letters, numbers, `_.-` and `/` between the levels of a hierarchy, which must then begin with `/`; "A parameter
 * name can't be prefixed with "aws" or "ssm" (case-insensitive)"; and "Native parameter support for Amazon
 * Machine Image IDs": the `aws:ec2:image` data type is for String parameters. SSM's codes and words, as users
 * quote them (docs/aws-sources.md): `ValidationException` "Parameter name must be a fully qualified name." and
 * "Parameter name: can't be prefixed with "ssm" (case-insensitive). …", `AccessDeniedException` "No access to
 * reserved parameter name: …".
 */
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { HAS_AWS_CLI, awsCli, failure, useEmulator } from '../helpers/fidelity.ts';
import { clients } from '../helpers/sandbox.ts';

const ACCOUNT = '111111111111';
const REGION = 'us-east-1';

const REFUSED = [
  { name: 'golden/ami', code: 'ValidationException', message: 'Parameter name must be a fully qualified name.' },
  { name: 'aws-golden', code: 'AccessDeniedException', message: 'No access to reserved parameter name: aws-golden.' },
  { name: 'AWSgolden', code: 'AccessDeniedException', message: 'No access to reserved parameter name: AWSgolden.' },
  { name: '/aws/x', code: 'AccessDeniedException', message: 'No access to reserved parameter name: /aws/x.' },
  { name: 'ssm-golden', code: 'ValidationException', message: /^Parameter name: can't be prefixed with "ssm" \(case-insensitive\)\./ },
  {
    name: '/golden/a b',
    code: 'ValidationException',
    message: /each sub-path can be formed as a mix of letters, numbers and the following 3 symbols \.-_$/,
  },
];

describe('SSM parameter names and data types', () => {
  const emulator = useEmulator({ accounts: [ACCOUNT], regions: [REGION] });
  const ssm = () => clients(emulator.get().url, ACCOUNT).ssm;

  it.each(REFUSED)('PutParameter refuses $name: $code (SDK)', async ({ name, code, message }) => {
    const error = await failure(ssm().send(new PutParameterCommand({ Name: name, Value: 'x', Type: 'String' })));
    expect(error?.name).toBe(code);
    if (typeof message === 'string') expect(error?.message).toBe(message);
    else expect(error?.message).toMatch(message);
  });

  it('accepts the names AWS accepts', async () => {
    for (const name of ['golden', '/golden/ami', '/Golden/windows-2022/latest_1.0', 'my-aws-param', '/team/ssm-x'])
      await ssm().send(new PutParameterCommand({ Name: name, Value: 'x', Type: 'String' }));
  });

  it('refuses aws:ec2:image on a SecureString (ValidationException), takes it on a String', async () => {
    const error = await failure(
      ssm().send(
        new PutParameterCommand({
          Name: '/golden/secure',
          Value: 'ami-0123456789abcdef0',
          Type: 'SecureString',
          DataType: 'aws:ec2:image',
        }),
      ),
    );
    expect(error?.name).toBe('ValidationException');
    await ssm().send(
      new PutParameterCommand({ Name: '/golden/plain', Value: 'ami-0123456789abcdef0', Type: 'String', DataType: 'aws:ec2:image' }),
    );
  });

  it.runIf(HAS_AWS_CLI)('the same codes through the AWS CLI', async () => {
    const answers = await Promise.all(
      ['golden/ami', '/aws/x', 'ssm-golden'].map((name) =>
        awsCli(emulator.get().url, ACCOUNT, REGION, ['ssm', 'put-parameter', '--name', name, '--value', 'x', '--type', 'String']),
      ),
    );
    expect(answers.map((a) => a.error)).toStrictEqual(['ValidationException', 'AccessDeniedException', 'ValidationException']);
  });
});
