import type { Command } from 'commander';
import { DRILLS } from '../drill/index.js';
import { adhocOptions, adhocRequest, duration } from './options.js';
import { withRunControl } from './process.js';

export function register(program: Command): void {
  adhocOptions(
    program
      .command('drill')
      .argument('<name>', `the drill: ${DRILLS.map((d) => d.name).join(', ')}`)
      .description('a recovery drill against the environment: load marker, disaster, recovery; RTO and RPO measured against dr_objectives (exit 1 when missed), kept in the audit trail'),
    'JSON-lines events on stdout',
  )
    .option('--lock-wait <duration>', 'wait this long for a host locked by another run', duration, 0)
    .action(async (name: string, o) => {
      const { runDrill } = await import('../drill/run.js');
      process.exitCode = await withRunControl((control) => runDrill({ ...adhocRequest(o), drill: name, lockWaitMs: o.lockWait, control }));
    });
}
