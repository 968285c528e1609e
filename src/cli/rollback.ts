/** `infra rollback RUN_ID`: put back what a run replaced (src/rollback). */
import type { Command } from 'commander';
import { commandLine, duration, inventoryOption, positiveInt } from './options.js';
import { withRunControl } from './process.js';

export function register(program: Command): void {
  inventoryOption(
    program
      .command('rollback')
      .description('restore the files a run replaced (remove those it created), then run their handlers; a run itself (locked, audited)')
      .argument('<run-id>', 'the run to undo (8 hex digits: see `infra history`)'),
  )
    .option('-l, --limit <pattern>', 'hosts (default all)')
    .option('-C, --check', 'show what would be restored (diffs), change nothing')
    .option('--force', 'also restore files changed after that run (conflicts)')
    .option('--playbook <file>', 'where the handlers are defined (default playbooks/site.yaml)')
    .option('--diff', 'show diffs of what changes')
    .option('--forks <n>', 'hosts in parallel', positiveInt, 50)
    .option('--json', 'JSON-lines events on stdout')
    .option('--accept-new', 'record unknown host keys')
    .option('--lock-wait <duration>', 'wait this long for a host locked by another run (e.g. 5m)', duration, 0)
    .action(async (runId: string, o) => {
      const { rollback } = await import('../rollback/rollback.js');
      process.exitCode = await withRunControl((control) =>
        rollback({
          cwd: process.cwd(),
          inventory: o.inventory,
          runId,
          limit: o.limit,
          playbook: o.playbook,
          vaultPasswordFile: o.vaultPasswordFile,
          check: !!o.check,
          force: !!o.force,
          diff: !!o.diff,
          json: !!o.json,
          forks: o.forks,
          acceptNew: !!o.acceptNew,
          lockWaitMs: o.lockWait,
          commandLine: commandLine(),
          control,
        }),
      );
    });
}
