import type { Command } from 'commander';
import { execOnHosts } from '../engine/adhoc.js';
import { adhocOptions, adhocRequest, commandTimeout } from './options.js';

export function register(program: Command): void {
  adhocOptions(
    program
      .command('exec')
      .description('run an ad-hoc shell command on hosts, output grouped per host')
      .argument('<command...>', 'the command, after --'),
    'JSON-lines events',
  )
    .option('--timeout <duration>', 'per-host command timeout, 1s to 24h', commandTimeout, 600_000)
    .action(async (words: string[], o) => {
      process.exitCode = await execOnHosts({ ...adhocRequest(o), timeoutMs: o.timeout, command: words.join(' ') });
    });
}
