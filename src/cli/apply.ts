import type { Command } from 'commander';
import { runPlaybook } from '../engine/run.js';
import { UserError } from '../errors.js';
import { runOptions, duration, runRequest } from './options.js';
import { withRunControl } from './process.js';

export function register(program: Command): void {
  runOptions(
    program
      .command('apply')
      .description('apply a playbook (default playbooks/site.yaml) or a saved plan to the inventory')
      .argument('[playbook|plan.json]', 'playbook YAML, or a plan file made by `infra plan --out`'),
    false,
  )
    .option('-C, --check', 'dry run: check only, change nothing')
    .option('--detailed-exitcode', 'with --check: exit 3 when changes are pending, 0 when none')
    .option('--lock-wait <duration>', 'wait this long for a host locked by another run (e.g. 5m)', duration, 0)
    .action(async (target: string | undefined, o) => {
      const isPlan = !!target && target.endsWith('.json');
      if (!isPlan && !o.inventory) throw new UserError('apply needs an inventory', { hint: 'infra apply -i lab [playbook]  (or: infra apply plan.json)' });
      process.exitCode = await withRunControl((control) =>
        runPlaybook(runRequest(o, { playbook: isPlan ? undefined : target, planIn: isPlan ? target : undefined, mode: 'apply', control })),
      );
    });
}
