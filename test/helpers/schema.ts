import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';

const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });

function validator(name: 'reconcile-report' | 'cleanup-report' | 'revoke-report' | 'outcome-change'): ValidateFunction {
  const schema = JSON.parse(readFileSync(new URL(`../../docs/schemas/${name}.schema.json`, import.meta.url), 'utf8')) as object;
  return ajv.compile(schema);
}

const validateReconcileReport = validator('reconcile-report');
const validateCleanupReport = validator('cleanup-report');
const validateRevokeReport = validator('revoke-report');
const validateOutcomeChange = validator('outcome-change');

/** The errors of a report against its documented schema (empty when it conforms). */
function schemaErrors(validate: ValidateFunction, report: unknown): string[] {
  return validate(JSON.parse(JSON.stringify(report))) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

export { schemaErrors, validateCleanupReport, validateOutcomeChange, validateReconcileReport, validateRevokeReport };
