import type { Command } from 'commander';
import { runPlaybook } from '../engine/run.js';
import { runOptions, runRequest } from './options.js';
import { withRunControl } from './process.js';

export function register(program: Command): void {
  runOptions(
    program
      .command('plan')
      .description('show what apply would change (check + diff); --out saves a plan that `apply plan.json` enforces')
      .argument('[playbook]', 'playbook YAML (default playbooks/site.yaml)'),
  )
    .option('-o, --out <file>', 'write the plan (per host: planned changes and observed-state fingerprints)')
    .option('--detailed-exitcode', 'exit 3 when changes are pending, 0 when none')
    .action(async (playbook: string | undefined, o) => {
      process.exitCode = await withRunControl((control) =>
        runPlaybook(runRequest(o, { playbook, check: true, diff: o.diff ?? true, verify: false, planOut: o.out, mode: 'apply', control })),
      );
    });
}
