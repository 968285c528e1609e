/**
 * Before an integration run: removes test containers and networks whose test process is gone
 * (test/image/remove-leftovers.sh). Unit-only runs never touch docker.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

export default function setup(project: TestProject): void {
  const filters = project.vitest.config.filters ?? [];
  const unitOnly = filters.length > 0 && filters.every((f) => f.replace(/^\.\//, '').startsWith('test/unit'));
  if (unitOnly) return;
  const script = fileURLToPath(new URL('./image/remove-leftovers.sh', import.meta.url));
  try {
    execFileSync('bash', [script], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 60_000 });
  } catch {
    // No docker here: the integration tests will say so themselves.
  }
}
