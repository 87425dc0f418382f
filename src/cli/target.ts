/**
 * Where the command line points: the region (flag, environment, then the profile's own region, as the AWS CLI
 * resolves it), the profile (it must exist) and the endpoint (it must be a URL). Wrong values are bad input.
 */
import { isKnownRegion, unknownRegion } from '../lib/core/regions.ts';
import { loadSharedConfigFiles } from '@smithy/core/config';
import { InputError } from '../lib/core/errors.ts';

interface TargetInput {
  regionFlag: string | undefined;
  /** AWS_REGION / AWS_DEFAULT_REGION. */
  regionEnv: string | undefined;
  /** --profile, else AWS_PROFILE. */
  profile: string | undefined;
  /** --endpoint-url, else AWS_ENDPOINT_URL. */
  endpoint: string | undefined;
}

interface ResolvedTarget {
  region: string;
  /** Where the region came from, for messages. */
  regionSource: 'flag' | 'environment' | 'profile' | 'default';
  profile: string | undefined;
  endpoint: string | undefined;
}

const DEFAULT_REGION = 'us-east-1';

function checkRegion(region: string, source: string): string {
  if (!isKnownRegion(region)) throw new InputError(`${unknownRegion(region)} (${source})`);
  return region;
}

/** Resolve and check the region, profile and endpoint. Throws {@link InputError} for a wrong one. */
async function resolveTarget(input: TargetInput): Promise<ResolvedTarget> {
  if (input.endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(input.endpoint);
    } catch {
      url = undefined;
    }
    if (url === undefined || !['http:', 'https:'].includes(url.protocol)) {
      throw new InputError(`--endpoint-url must be an http(s) URL such as http://127.0.0.1:4566, got "${input.endpoint}"`);
    }
  }
  let profileRegion: string | undefined;
  if (input.profile !== undefined) {
    const files = await loadSharedConfigFiles({ ignoreCache: true });
    const entry = files.configFile[input.profile] ?? files.credentialsFile[input.profile];
    if (entry === undefined) {
      const known = [...new Set([...Object.keys(files.configFile), ...Object.keys(files.credentialsFile)])]
        .filter((name) => !name.includes(' '))
        .sort();
      throw new InputError(
        `unknown profile "${input.profile}": ${known.length === 0 ? 'no profiles in ~/.aws/config or ~/.aws/credentials' : `the profiles are ${known.join(', ')}`} (aws configure --profile ${input.profile} creates it)`,
      );
    }
    profileRegion = files.configFile[input.profile]?.region ?? files.credentialsFile[input.profile]?.region;
  }
  const [region, regionSource] =
    input.regionFlag !== undefined
      ? ([checkRegion(input.regionFlag, '--region'), 'flag'] as const)
      : input.regionEnv !== undefined
        ? ([checkRegion(input.regionEnv, 'AWS_REGION'), 'environment'] as const)
        : profileRegion !== undefined
          ? ([checkRegion(profileRegion, `region of profile ${input.profile ?? ''}`), 'profile'] as const)
          : ([DEFAULT_REGION, 'default'] as const);
  return { region, regionSource, profile: input.profile, endpoint: input.endpoint };
}

export { isKnownRegion, resolveTarget };
export type { ResolvedTarget, TargetInput };
