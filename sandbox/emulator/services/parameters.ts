import { AwsError } from '../protocol/errors.ts';
import type { CellStore, Parameter, ParameterVersion } from '../state.ts';

/**
 * SSM Parameter Store's versions and labels, shared by SSM itself (GetParameter, PutParameter,
 * LabelParameterVersion), Image Builder's parameter writes, scenarios and EC2's `resolve:ssm:` references.
 *
 * Sources: Systems Manager User Guide, "Working with parameter versions" and "Working with parameter labels"
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-versions.html,
 * https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-labels.html): every write
 * makes a new version; SSM keeps the last 100; a version is selected with `name:version` and a label with
 * `name:label`; a label is on at most one version of a parameter at a time (labelling another version moves
 * it); at most 10 labels per version; a label is at most 100 characters, of letters, numbers, `.`, `-`, `_`,
 * must not begin with a number, nor with `aws` or `ssm` (any case).
 */

/**
 * The error SSM answers a parameter name it refuses, or undefined for a good one. The rules (Systems Manager
 * User Guide, "Parameter name requirements and constraints",
 * https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-parameter-name-constraints.html):
 * letters, numbers and `_.-`, with `/` delineating a hierarchy, which must then begin with `/` (a fully
 * qualified name); no prefix `aws` or `ssm`, any case ("awsTestParameter or SSM-testparameter will fail with
 * an exception"); at most 1011 characters; at most 15 levels. SSM's answers, as users quote them:
 * `ValidationException` "Parameter name must be a fully qualified name." for `golden/ami`;
 * `AccessDeniedException` "No access to reserved parameter name: …" for `aws…` and `/aws/…`; and for other
 * names `ValidationException` "Parameter name: can't be prefixed with "ssm" (case-insensitive). If formed as a
 * path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters,
 * numbers and the following 3 symbols .-_" (docs/aws-sources.md).
 */
function parameterNameError(name: string): AwsError | undefined {
  const bare = name.startsWith('/') ? name.slice(1) : name;
  if (/^aws/i.test(bare)) return new AwsError('AccessDeniedException', `No access to reserved parameter name: ${name}.`);
  if (name.includes('/') && !name.startsWith('/'))
    return new AwsError('ValidationException', 'Parameter name must be a fully qualified name.');
  const levels = bare.split('/');
  if (
    /^ssm/i.test(bare) ||
    name.length < 1 ||
    name.length > 1011 ||
    levels.length > 15 ||
    !levels.every((l) => /^[A-Za-z0-9_.-]+$/.test(l))
  )
    return new AwsError(
      'ValidationException',
      'Parameter name: can\'t be prefixed with "ssm" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_',
    );
  return undefined;
}

/** Versions SSM keeps per parameter. */
const HISTORY_LIMIT = 100;

/** Write a new version of a parameter (PutParameter once valid, Image Builder's distribution, scenarios). */
function writeParameter(
  store: CellStore,
  p: { name: string; value: string; type?: string | undefined; dataType?: string | undefined; lastModified: Date; version?: number },
): Parameter {
  const existing = store.parameters.get(p.name);
  const version = p.version ?? (existing?.version ?? 0) + 1;
  const history: ParameterVersion[] = [
    ...(existing?.history ?? []),
    { version, value: p.value, lastModified: p.lastModified, labels: [] },
  ].slice(-HISTORY_LIMIT);
  const parameter: Parameter = {
    name: p.name,
    value: p.value,
    type: p.type ?? existing?.type ?? 'String',
    dataType: p.dataType ?? existing?.dataType ?? 'text',
    version,
    lastModified: p.lastModified,
    history,
  };
  store.parameters.set(p.name, parameter);
  return parameter;
}

/** `name`, `name:version` or `name:label`, split as SSM splits a GetParameter name (the selector after the last `:`). */
function parseSelector(reference: string): { name: string; version?: number; label?: string } {
  const match = /^(.*[^:]):([^/:]+)$/.exec(reference);
  if (match === null) return { name: reference };
  const [, name = '', selector = ''] = match;
  return /^\d+$/.test(selector) ? { name, version: Number(selector) } : { name, label: selector };
}

/** The version a reference selects, or the error SSM's GetParameter answers. */
function selectParameter(
  store: CellStore,
  reference: string,
): { parameter: Parameter; version: ParameterVersion; selector: string | undefined } {
  const { name, version, label } = parseSelector(reference);
  const parameter = store.parameters.get(name);
  if (parameter === undefined) throw new AwsError('ParameterNotFound', `Parameter ${reference} not found.`);
  const history =
    parameter.history.length > 0
      ? parameter.history
      : [{ version: parameter.version, value: parameter.value, lastModified: parameter.lastModified, labels: [] }];
  const latest = history.at(-1) as ParameterVersion;
  if (version !== undefined) {
    const found = history.find((v) => v.version === version);
    // "ParameterVersionNotFound: The specified parameter version wasn't found" (SSM API reference, GetParameter, Errors)
    if (found === undefined)
      throw new AwsError(
        'ParameterVersionNotFound',
        `Systems Manager could not find version ${version} of ${name}. Verify the version and try again.`,
      );
    return { parameter, version: found, selector: `:${version}` };
  }
  if (label !== undefined) {
    const found = history.find((v) => v.labels.includes(label));
    if (found === undefined) throw new AwsError('ParameterNotFound', `Parameter ${reference} not found.`);
    return { parameter, version: found, selector: `:${label}` };
  }
  return { parameter, version: latest, selector: undefined };
}

function validLabel(label: string): boolean {
  return /^[A-Za-z0-9._-]{1,100}$/.test(label) && !/^\d/.test(label) && !/^(aws|ssm)/i.test(label);
}

/**
 * LabelParameterVersion (SSM API reference): labels go on the given version (default: the latest); a label
 * already on another version moves; labels that break the rules come back in `InvalidLabels` and are not set.
 */
function labelParameterVersion(
  store: CellStore,
  input: { Name?: string | undefined; ParameterVersion?: number | undefined; Labels?: string[] | undefined },
): { InvalidLabels: string[]; ParameterVersion: number } {
  const name = input.Name ?? '';
  const parameter = store.parameters.get(name);
  if (parameter === undefined) throw new AwsError('ParameterNotFound', `Parameter ${name} not found.`);
  const labels = input.Labels ?? [];
  if (labels.length < 1 || labels.length > 10)
    throw new AwsError(
      'ValidationException',
      "1 validation error detected: Value at 'labels' failed to satisfy constraint: Member must have length between 1 and 10",
    );
  if (parameter.history.length === 0)
    parameter.history.push({ version: parameter.version, value: parameter.value, lastModified: parameter.lastModified, labels: [] });
  const number = input.ParameterVersion ?? parameter.version;
  const target = parameter.history.find((v) => v.version === number);
  if (target === undefined)
    throw new AwsError(
      'ParameterVersionNotFound',
      `Systems Manager could not find version ${number} of ${name}. Verify the version and try again.`,
    );
  const invalid = labels.filter((l) => !validLabel(l));
  const good = labels.filter((l) => validLabel(l) && !target.labels.includes(l));
  if (target.labels.length + good.length > 10)
    throw new AwsError(
      'ParameterVersionLabelLimitExceeded',
      `A parameter version can have maximum 10 labels. Move one or more labels to another version and try again.`,
    );
  for (const v of parameter.history) v.labels = v.labels.filter((l) => !good.includes(l));
  target.labels.push(...good);
  return { InvalidLabels: invalid, ParameterVersion: number };
}

export { labelParameterVersion, parameterNameError, parseSelector, selectParameter, writeParameter };
