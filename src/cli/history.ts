/** `infra history`: the runs that touched each host, from the hosts themselves. */
import type { Command } from 'commander';
import { inventoryOption, positiveInt } from './options.js';

export function register(program: Command): void {
  inventoryOption(
    program
      .command('history')
      .description("the runs that touched each host (who, when, command, what changed), from the host's kept runs and audit copy"),
  )
    .option('-l, --limit <pattern>', 'hosts (default all)')
    .option('--forks <n>', 'hosts in parallel', positiveInt, 50)
    .option('--json', 'one JSON object per host')
    .option('--accept-new', 'record unknown host keys')
    .action(async (o) => {
      const { formatHistory, readHistory } = await import('../rollback/history.js');
      const all = await readHistory({ cwd: process.cwd(), inventory: o.inventory, limit: o.limit, vaultPasswordFile: o.vaultPasswordFile, forks: o.forks, acceptNew: !!o.acceptNew });
      process.stdout.write(o.json ? all.map((h) => JSON.stringify(h)).join('\n') + '\n' : formatHistory(all));
      if (all.some((h) => 'error' in h)) process.exitCode = 1;
    });
}
