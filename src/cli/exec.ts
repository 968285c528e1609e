import type { Command } from 'commander';
import { execOnHosts } from '../engine/adhoc.js';
import { inventoryOption, positiveInt, duration, commandLine } from './options.js';

export function register(program: Command): void {
  inventoryOption(
    program
      .command('exec')
      .description('run an ad-hoc shell command on hosts, output grouped per host')
      .argument('<command...>', 'the command, after --'),
  )
    .option('-l, --limit <pattern>', 'hosts (default all)')
    .option('--forks <n>', 'hosts in parallel', positiveInt, 50)
    .option('--timeout <duration>', 'per-host command timeout', duration, 600_000)
    .option('--json', 'JSON-lines events')
    .option('--accept-new', 'record unknown host keys')
    .action(async (words: string[], o) => {
      process.exitCode = await execOnHosts({
        cwd: process.cwd(),
        inventory: o.inventory,
        limit: o.limit,
        vaultPasswordFile: o.vaultPasswordFile,
        forks: o.forks,
        json: !!o.json,
        acceptNew: !!o.acceptNew,
        commandLine: commandLine(),
        timeoutMs: o.timeout,
        command: words.join(' '),
      });
    });
}
