import type { Command } from 'commander';
import { runPlaybook } from '../engine/run.js';
import { runOptions, commandLine } from './options.js';

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
      process.exitCode = await runPlaybook({
        cwd: process.cwd(),
        inventory: o.inventory,
        playbook,
        limit: o.limit,
        tags: o.tags,
        skipTags: o.skipTags,
        extraVars: o.extraVars,
        vaultPasswordFile: o.vaultPasswordFile,
        check: true,
        diff: o.diff ?? true,
        forks: o.forks,
        json: !!o.json,
        acceptNew: !!o.acceptNew,
        verify: false,
        lockWaitMs: 0,
        planOut: o.out,
        detailedExitcode: !!o.detailedExitcode,
        commandLine: commandLine(),
        mode: 'apply',
      });
    });
}
