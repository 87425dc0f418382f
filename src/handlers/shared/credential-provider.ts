/**
 * The credential provider the Lambda bundles use in place of the SDK's default chain
 * (`@aws-sdk/credential-provider-node`, aliased to this module by scripts/build.mjs).
 *
 * Lambda hands a function its execution role's credentials in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
 * and `AWS_SESSION_TOKEN` (Lambda Developer Guide, "Defined runtime environment variables"), and the
 * handlers pass them to the client factory explicitly (`lambdaCredentials` in src/lib/core/config.ts). The default
 * chain's other sources (shared files, SSO, web identity, container and instance metadata, credential_process)
 * never apply inside a function, yet bundling them adds about 80 KiB of nested STS, SSO and sign-in clients
 * to every function. Reading the environment is the chain's first step, so a client that ends up here gets
 * exactly what the chain would have given it in Lambda.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';

type FromEnvInit = Parameters<typeof fromEnv>[0];

const defaultProvider = (init?: FromEnvInit) => fromEnv(init);

export { defaultProvider };
