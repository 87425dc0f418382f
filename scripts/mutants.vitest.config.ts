import { defineConfig } from 'vitest/config';
import base from '../vitest.config.ts';

// The mutation check runs the planners' unit tests only: they need no Lambda bundles, so the global setup
// that builds them (about 7 s) is left out of each of the 200-odd runs.
export default defineConfig({ ...base, test: { ...base.test, globalSetup: [] } });
