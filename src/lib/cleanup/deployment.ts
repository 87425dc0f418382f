import { GetParameterCommand } from '@aws-sdk/client-ssm';
import * as z from 'zod';
import type { ClientFactory } from '../aws/clients.ts';
import { CLEANUP_SETTING_VARIABLES, type Config, withCleanupSettings } from '../core/config.ts';
import { briefFailure, toFailure } from '../core/errors.ts';

/**
 * Where a cleanup run's base guards come from: the deployment's settings, which a request may only tighten.
 * The functions have them in their environment; any other caller (the CLI) reads them from the parameter the
 * stack writes (serverless.yml, CleanupSettingsParameter). A caller that cannot read them plans with the
 * settings it assumed and may not apply.
 */
interface GuardsSource {
  /** `deployment`: the deployment's own settings; `assumed`: the caller's, since the deployment's could not be read. */
  from: 'deployment' | 'assumed';
  /** Where they were read (the function's environment, the parameter's name), or why they could not be. */
  detail: string;
  /** Set when apply must be refused because of where the settings came from. */
  refusal: string | undefined;
}

/** The guards of a function of the deployment: its environment is the deployment's settings. */
const FUNCTION_ENVIRONMENT: GuardsSource = {
  from: 'deployment',
  detail: "the function's environment (serverless.yml params)",
  refusal: undefined,
};

/** The name of a deployment's cleanup settings parameter (serverless.yml, CleanupSettingsParameter). */
function cleanupSettingsParameter(stage: string): string {
  return `/imagebuilder-reconciler/${stage}/cleanup-settings`;
}

/** The parameter's value: a JSON object of the variables of CLEANUP_SETTING_VARIABLES, every one a string. */
const SETTINGS = z.strictObject(
  Object.fromEntries(CLEANUP_SETTING_VARIABLES.map((name) => [name, z.string()])) as Record<
    (typeof CLEANUP_SETTING_VARIABLES)[number],
    z.ZodString
  >,
);

/**
 * Read a deployment's cleanup settings (`ssm:GetParameter` on its one parameter, in the caller's account and
 * the given region) and return the configuration with them. When they cannot be read or are not valid, the
 * caller's own configuration is returned with a source that refuses apply and says which settings were assumed.
 */
async function readDeploymentGuards(
  clients: ClientFactory,
  region: string,
  parameterName: string,
  local: Config,
): Promise<{ config: Config; source: GuardsSource }> {
  let raw: string;
  try {
    const own = await clients.ownAccountId();
    const cell = await clients.forCell(own, region);
    const out = await cell.ssm.send(new GetParameterCommand({ Name: parameterName }));
    raw = out.Parameter?.Value ?? '';
  } catch (error: unknown) {
    return assumed(
      local,
      `could not read the deployment's cleanup settings ${parameterName} in ${region} (${briefFailure(toFailure(error))})`,
    );
  }
  let vars: Record<string, string>;
  try {
    vars = SETTINGS.parse(JSON.parse(raw));
  } catch (error: unknown) {
    return assumed(
      local,
      `the deployment's cleanup settings ${parameterName} are not the JSON object of ${CLEANUP_SETTING_VARIABLES.join(', ')} the stack writes (${toFailure(error).message.split('\n')[0]})`,
    );
  }
  try {
    return {
      config: withCleanupSettings(local, vars),
      source: { from: 'deployment', detail: `${parameterName} (${region})`, refusal: undefined },
    };
  } catch (error: unknown) {
    return assumed(local, `the deployment's cleanup settings ${parameterName} are not valid (${toFailure(error).message})`);
  }
}

function assumed(local: Config, why: string): { config: Config; source: GuardsSource } {
  const settings = [
    `strategy ${local.cleanupStrategy}`,
    `keep tag ${local.cleanupKeepTagKey}`,
    `minimum age ${local.cleanupMinAgeDays} day(s)`,
    `launched within ${local.cleanupLaunchedWithinDays} day(s)`,
    `shared ${local.cleanupShared}`,
    `disable grace ${local.cleanupDisableGraceDays} day(s)`,
    `at most ${local.cleanupMaxPerRun} per run`,
  ].join(', ');
  return {
    config: local,
    source: {
      from: 'assumed',
      detail: `${why}; planned with assumed settings: ${settings}`,
      refusal: `${why}: apply acts only with the deployment's guards (pass --stage, or grant ssm:GetParameter on it)`,
    },
  };
}

export { FUNCTION_ENVIRONMENT, cleanupSettingsParameter, readDeploymentGuards };
export type { GuardsSource };
