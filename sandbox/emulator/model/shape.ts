/** One shape of an AWS service model, reduced to what validation needs (see scripts/gen-imagebuilder-model.mjs). */
type ModelShape =
  | { type: 'structure'; members: Record<string, string>; required?: string[]; idempotencyTokens?: string[] }
  | { type: 'list'; member: string; min?: number; max?: number }
  | { type: 'map'; key: string; value: string; min?: number; max?: number }
  | { type: 'string'; enum?: string[]; pattern?: string; min?: number; max?: number }
  | { type: 'integer' | 'long' | 'float' | 'double' | 'boolean' | 'timestamp' | 'blob'; min?: number; max?: number };

export type { ModelShape };
