'use strict';
/**
 * A local Serverless Framework plugin (serverless.yml `plugins:`) that guards packaging and deploying:
 * - the bundles are rebuilt from the source first (scripts/build.mjs), so a stale dist/ can never ship;
 * - every param is checked before anything is packaged: the params the functions read through their
 *   environment by the functions' own configuration loader (src/lib/core/config.ts, so the rules are the
 *   ones the functions apply at run time), the others by the rules below. A typo (`cleanupMode=aply`) fails
 *   the command, naming the param and the values it allows, instead of packaging with exit 0 and failing
 *   every invocation later.
 * Works offline: it reads the service's own files and makes no AWS call.
 */
const { execFileSync } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

/** The params no function reads from its environment, and what each may be. */
const OTHER_PARAMS = {
  organizationId: {
    test: (v) => v === '' || /^o-[a-z0-9]{10,32}$/.test(v),
    allowed: "'' or an organization id (o- and 10 to 32 of a-z, 0-9)",
  },
  fastLaunchWithoutLaunchTemplate: { test: (v) => v === 'true' || v === 'false', allowed: 'true or false' },
  parameterNamePattern: {
    test: (v) => /^[A-Za-z0-9_.\-/*]{1,2047}$/.test(v) && !v.startsWith('/'),
    allowed: 'an SSM parameter name pattern without its leading slash',
  },
  imageArnPrefix: { test: (v) => /^imagebuilder:/.test(v), allowed: "a prefix starting with 'imagebuilder:'" },
  alarmTopicArn: {
    test: (v) => v === '' || /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/.test(v),
    allowed: "'' or an SNS topic ARN",
  },
  alarmEmail: { test: (v) => v === '' || /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v), allowed: "'' or an e-mail address" },
  sweepRate: {
    test: (v) => /^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$/.test(v),
    allowed: 'an EventBridge schedule expression: rate(6 hours) or cron(...)',
  },
};

/** The params as the Framework resolves them: defaults, then the stage's, then `--param k=v`. */
function resolvedParams(input, options) {
  const stage = options.stage ?? input.provider?.stage ?? 'dev';
  const params = { ...(input.params?.default ?? {}), ...(String(stage).startsWith('${') ? {} : (input.params?.[stage] ?? {})) };
  const given = options.param === undefined ? [] : Array.isArray(options.param) ? options.param : [options.param];
  for (const entry of given) {
    const at = String(entry).indexOf('=');
    if (at > 0) params[String(entry).slice(0, at)] = String(entry).slice(at + 1);
  }
  return params;
}

class DeployGuard {
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options ?? {};
    this.hooks = {
      'before:package:initialize': () => this.guard(),
      'before:deploy:function:initialize': () => this.guard(),
    };
  }

  async guard() {
    const root = this.serverless.serviceDir ?? process.cwd();
    const input = this.serverless.configurationInput ?? {};
    const params = resolvedParams(input, this.options);
    const problems = [];
    for (const [name, rule] of Object.entries(OTHER_PARAMS)) {
      const value = params[name];
      if (value !== undefined && !rule.test(String(value)))
        problems.push(`param ${name}: must be ${rule.allowed}, got ${JSON.stringify(String(value))}`);
    }
    // the environment the functions get (the Framework has resolved every ${param:…} in it by now; CloudFormation
    // references left out), and which param each variable comes from, as serverless.yml writes it
    const env = {};
    const environments = [input.provider?.environment ?? {}, ...Object.values(input.functions ?? {}).map((f) => f?.environment ?? {})];
    for (const environment of environments) {
      for (const [key, value] of Object.entries(environment)) {
        if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') env[key] = String(value);
      }
    }
    const byVariable = {};
    const file = this.serverless.configurationFilename ?? 'serverless.yml';
    for (const m of readFileSync(path.resolve(root, file), 'utf8').matchAll(/^\s+([A-Z][A-Z0-9_]+): \$\{param:([A-Za-z0-9]+)\}\s*$/gm))
      byVariable[m[1]] = m[2];
    const { loadConfig } = await this.configModule(root);
    // the loader stops at the first wrong variable: drop each one it names and ask again, to list them all
    for (let i = 0; i < 64; i += 1) {
      try {
        loadConfig(env);
        break;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        const variable = /^([A-Z_]+) /.exec(message)?.[1];
        const param = variable === undefined ? undefined : byVariable[variable];
        problems.push(param === undefined ? message : `param ${param}: ${message}`);
        if (variable === undefined || !(variable in env)) break;
        delete env[variable];
      }
    }
    if (problems.length > 0) {
      const ServerlessError = this.serverless.classes?.Error ?? Error;
      throw new ServerlessError(
        `refusing to package: ${problems.length} param(s) wrong\n  ${problems.join('\n  ')}`,
        'RECONCILER_BAD_PARAM',
      );
    }
    // rebuild the bundles the functions ship (package.individually takes dist/lambda/<function>)
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs'), '--quiet'], { cwd: root, stdio: 'inherit' });
  }

  /** The functions' configuration loader, bundled from the source for this one check. */
  async configModule(root) {
    const { build } = require(require.resolve('esbuild', { paths: [root] }));
    const dir = mkdtempSync(path.join(tmpdir(), 'ibr-guard-'));
    try {
      const outfile = path.join(dir, 'config.mjs');
      await build({
        entryPoints: [path.join(root, 'src', 'lib', 'core', 'config.ts')],
        outfile,
        bundle: true,
        platform: 'node',
        format: 'esm',
        logLevel: 'silent',
      });
      return await import(pathToFileURL(outfile).href);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

module.exports = DeployGuard;
