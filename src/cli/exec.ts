import type { Command } from 'commander';
import { execOnHosts } from '../engine/adhoc.js';
import { adhocOptions, adhocRequest, commandTimeout, duration } from './options.js';
import { withRunControl } from './process.js';

export function register(program: Command): void {
  adhocOptions(
    program
      .command('exec')
      .description('run an ad-hoc shell command on hosts, output grouped per host (takes the run lock)')
      .argument('<command...>', 'the command, after --'),
    'JSON-lines events',
  )
    .option('--timeout <duration>', 'per-host command timeout, 1s to 24h', commandTimeout, 600_000)
    .option('--lock-wait <duration>', 'wait this long for a host locked by another run', duration, 0)
    .action(async (words: string[], o) => {
      process.exitCode = await withRunControl((control) =>
        execOnHosts({ ...adhocRequest(o), timeoutMs: o.timeout, lockWaitMs: o.lockWait, command: words.join(' '), control }),
      );
    });
}
