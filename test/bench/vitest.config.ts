import { defineConfig } from 'vitest/config';

// The benchmark's own unit tests (parsers, medians, targets): no docker, no network.
// Run: npx vitest run --config test/bench/vitest.config.ts
export default defineConfig({ test: { include: ['test/bench/**/*.test.ts'] } });
