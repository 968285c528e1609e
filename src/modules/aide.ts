/**
 * aide.update: the handler every role notifies after it changed files AIDE watches, so that a
 * run of infra does not raise a file-integrity alarm while a hand edit still does. It restarts
 * the re-baseline unit the hardening role installs (one `aide --update` pass that records what
 * it absorbed in the journal); a restart, not a start, so a re-baseline already running (after
 * a dpkg run) is replaced by one that sees every file this run wrote. Where hardening has not
 * set AIDE up (yet), it is skipped with the reason.
 */
import { z } from 'zod';
import { sh } from '../shell/quote.js';
import { commandFailed, runChecked } from './run-checked.js';
import { parseShow } from './systemd.js';
import { defineModule } from './types.js';

/** The unit roles/hardening installs; the one name this module and the role share. */
export const UPDATE_UNIT = 'infra-aide-update.service';

const updateParams = z.object({}).strict();
export type UpdateParams = z.infer<typeof updateParams>;

export const update = defineModule<UpdateParams, z.input<typeof updateParams>>({
  name: 'aide.update',
  params: updateParams,
  describe: () => 're-baseline the AIDE database',
  async check(host) {
    const r = await runChecked(host, sh`systemctl show -p LoadState -- ${UPDATE_UNIT}`, `systemctl show ${UPDATE_UNIT}`);
    if (parseShow(r.stdout).loadState !== 'loaded') {
      return { changes: [], reason: `AIDE is not set up on this host (no ${UPDATE_UNIT}: the hardening role installs it)`, skipped: true };
    }
    return { changes: [{ what: 're-baseline the AIDE database', from: 'files changed by this run' }], always: true };
  },
  async apply(host) {
    // Oneshot: restart returns when the new database is in place (or the unit failed).
    const r = await host.run(sh`systemctl restart -- ${UPDATE_UNIT}`, { timeoutMs: 30 * 60_000 });
    if (r.code === 0) return;
    const j = await host.run(sh`journalctl -u ${UPDATE_UNIT} -n 15 --no-pager -o cat`);
    const err = commandFailed(`systemctl restart ${UPDATE_UNIT}`, r);
    if (j.code === 0 && j.stdout.trim()) err.message += `\n--- journal ${UPDATE_UNIT} ---\n${j.stdout.trimEnd()}`;
    throw err;
  },
});
