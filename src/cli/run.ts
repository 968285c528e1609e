import type { Command } from 'commander';
import { runPlaybook } from '../engine/run.js';
import { runOptions, duration, runRequest } from './options.js';
import { withRunControl } from './process.js';

export function register(program: Command): void {
  runOptions(
    program
      .command('run')
      .description('apply one role, ad hoc, to the hosts of --limit')
      .argument('<role>', 'role name (roles/<name>/role.ts)'),
  )
    .option('-C, --check', 'dry run: check only, change nothing')
    .option('--detailed-exitcode', 'with --check: exit 3 when changes are pending')
    .option('--lock-wait <duration>', 'wait this long for a locked host', duration, 0)
    .action(async (role: string, o) => {
      process.exitCode = await withRunControl((control) => runPlaybook(runRequest(o, { role, mode: 'run', control })));
    });
}
