import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Load a sample event from events/ (a fresh copy each time, so tests may change it). */
function getTestEvent<T = Record<string, unknown>>(path: string): T {
  const file = fileURLToPath(new URL(`../../events/${path}.json`, import.meta.url));
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

export { getTestEvent };
