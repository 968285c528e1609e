import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    // Forks: each test file in its own process (ssh2 sockets, child processes, docker).
    pool: 'forks',
    poolOptions: { forks: { minForks: 1, maxForks: 2 } },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // No registry is reachable: testcontainers must not try to pull Ryuk.
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
    // Leftovers of crashed runs are removed by the fleet fixture before its first fleet
    // (test/image/remove-leftovers.sh), so unit-only runs never touch docker.
  },
});
