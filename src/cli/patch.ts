import { Option, type Command } from 'commander';
import { patchFleet } from '../patch/run.js';
import { adhocOptions, adhocRequest, duration } from './options.js';
import { withRunControl } from './process.js';

export function register(program: Command): void {
  adhocOptions(
    program
      .command('patch')
      .description('the patch run: security updates host by host in the inventory policy\'s order, drained, verified, reported'),
    'JSON-lines events on stdout',
  )
    .option('-C, --check', 'list each host\'s pending updates and the rollout order; change nothing; exit 3 when something is pending')
    .addOption(new Option('--security-only', 'install updates from security suites only (default)').conflicts('all'))
    .addOption(new Option('--all', 'install every pending update'))
    .addOption(new Option('--reboot <when>', 'over every policy\'s patch.reboot').choices(['auto', 'never', 'always']))
    .option('--window <name>', 'patch the hosts of this maintenance window (patch_windows) only')
    .option('--force-window', 'patch outside the maintenance window (an emergency: the audit trail keeps it)')
    .option('--report-dir <dir>', 'where the JSON and Markdown reports go (default: $XDG_STATE_HOME/infra/patch)')
    .option('--diff', 'show package version diffs')
    .option('--lock-wait <duration>', 'wait this long for a host locked by another run', duration, 0)
    .action(async (o) => {
      process.exitCode = await withRunControl((control) =>
        patchFleet({
          ...adhocRequest(o),
          diff: !!o.diff,
          check: !!o.check,
          selection: o.all ? 'all' : 'security',
          reboot: o.reboot,
          window: o.window,
          forceWindow: !!o.forceWindow,
          reportDir: o.reportDir,
          lockWaitMs: o.lockWait,
          control,
        }),
      );
    });
}
