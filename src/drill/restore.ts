/**
 * Drill `restore`: a file restore from restic, the way it happens for real, on one host (the
 * first one --limit selects that is not a backup repository host).
 *
 *   1. a load marker appends a numbered, timestamped line to /etc/infra-drill/<run>/markers
 *      every 200 ms (a systemd-run unit on the host: it outlives no one, `--collect`);
 *   2. the scheduled backup runs (infra-backup.service, what the timer starts: /etc is in it);
 *   3. the marker keeps writing (the writes a real loss takes with it), then the disaster:
 *      the marker stops, its directory is deleted;
 *   4. infra-restore puts the latest snapshot of it back in place, verified;
 *   5. RTO = deletion → restored; RPO = the span of acknowledged lines that did not come back.
 *      The restored lines must be exactly the first lines written (no damaged or foreign data).
 *
 * File backups run nightly: in production the loss window is up to a day; the drill measures
 * the pipeline (backup → restore → verify) and its speed, the note says so.
 */
import { selectHosts } from '../inventory/limit.js';
import type { Inventory } from '../inventory/types.js';
import { UserError } from '../errors.js';
import { quote, sh } from '../shell/quote.js';
import type { Measured } from './objectives.js';
import type { Drill, DrillContext } from './types.js';

const MARKER_INTERVAL_MS = 200;
/** Writes after the backup that the disaster takes with it. */
const GAP_MS = 2000;

export const restoreDrill: Drill = {
  name: 'restore',
  describe: 'file restore from restic: scheduled backup under load, delete, restore in place, verify',
  hosts(inventory, limit) {
    const candidates = (limit.length ? limit : ['all']).flatMap((p) => selectHosts(inventory, p));
    const subject = candidates.find((h) => !inventory.hosts.get(h)!.groups.includes(repositoryGroup(inventory.hosts.get(h)!.vars)));
    if (!subject) {
      throw new UserError('drill restore: no backed-up host selected', { hint: 'name one with -l HOST (a host the restic role backs up, not the backup host)' });
    }
    return [subject];
  },
  run: (ctx) => runRestoreDrill(ctx),
};

function repositoryGroup(vars: Record<string, unknown>): string {
  return typeof vars.restic_repository_group === 'string' ? vars.restic_repository_group : 'backup';
}

export interface Marker {
  seq: number;
  ms: number;
}

/** "seq epoch-ms" lines; a torn last line (cut mid-write) is not a marker. */
export function parseMarkers(text: string): Marker[] {
  return text
    .split('\n')
    .map((l) => /^(\d+) (\d{13})$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ seq: Number(m[1]), ms: Number(m[2]) }));
}

/** Lost writes and their span: what was acknowledged and did not come back. Restored data must be a prefix of what was written. */
export function compareMarkers(acked: Marker[], restored: Marker[]): { lost: number; rpoMs: number } {
  restored.forEach((r, i) => {
    const a = acked[i];
    if (!a || a.seq !== r.seq || a.ms !== r.ms) throw new Error(`restored marker ${i + 1} (${r.seq} ${r.ms}) is not the one written (${a ? `${a.seq} ${a.ms}` : 'none'}): the restore returned other data`);
  });
  const lost = acked.length - restored.length;
  if (lost === 0) return { lost, rpoMs: 0 };
  const last = acked[acked.length - 1].ms;
  const kept = restored.length ? restored[restored.length - 1].ms : acked[0].ms - MARKER_INTERVAL_MS;
  return { lost, rpoMs: last - kept };
}

async function runRestoreDrill(ctx: DrillContext): Promise<Measured> {
  const [host] = ctx.hosts;
  const dir = `/etc/infra-drill/${ctx.runId}`;
  const unit = `infra-drill-marker-${ctx.runId}`;
  const run = async (what: string, cmd: string, timeoutMs = 600_000): Promise<string> => {
    const r = await ctx.run(host, cmd, { timeoutMs });
    if (r.code !== 0) throw new Error(`${what} failed on ${host} (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-800)}`);
    return r.stdout;
  };
  await run('the restic role\'s tools', 'test -x /usr/local/sbin/infra-backup && test -x /usr/local/sbin/infra-restore || { echo "infra-backup/infra-restore missing: apply the restic role to this host first" >&2; exit 1; }');

  const loop = sh`i=0; while :; do i=$((i+1)); echo "$i $(date +%s%3N)" >> ${`${dir}/markers`}; sleep ${String(MARKER_INTERVAL_MS / 1000)}; done`;
  await run('starting the load marker', `mkdir -p -m 0700 ${quote(dir)} && systemd-run --quiet --collect --unit ${quote(unit)} /bin/sh -c ${quote(loop)}`);
  ctx.step(host, `load marker: a line every ${MARKER_INTERVAL_MS} ms to ${dir}/markers (unit ${unit})`, true);
  try {
    await sleep(1000);
    await run('the scheduled backup (infra-backup.service)', 'systemctl start infra-backup.service || { journalctl -u infra-backup.service -n 30 --no-pager >&2; exit 1; }', 3_600_000);
    ctx.step(host, 'scheduled backup under load: infra-backup.service', true);
    await sleep(GAP_MS);

    const acked = parseMarkers(await run('the disaster (marker stopped, directory deleted)', sh`systemctl stop ${unit}; cat ${`${dir}/markers`} && rm -rf ${dir}`));
    const disaster = Date.now();
    ctx.step(host, `disaster: ${dir} deleted after ${acked.length} acknowledged writes`, true);

    await run('infra-restore', sh`infra-restore --from latest --include ${dir} --in-place`, 3_600_000);
    const restored = parseMarkers(await run('reading the restored markers', sh`cat ${`${dir}/markers`}`));
    const rtoMs = Date.now() - disaster;
    ctx.step(host, `restored in place from the latest snapshot: ${restored.length} markers back`, true);

    const { lost, rpoMs } = compareMarkers(acked, restored);
    return {
      rtoMs,
      rpoMs,
      acknowledged: acked.length,
      lost,
      notes: [
        `the drill lost the writes of its last ${GAP_MS / 1000} s on purpose (made after the backup); file backups run nightly, so a real loss loses up to a day of file changes`,
      ],
    };
  } finally {
    await ctx.run(host, sh`systemctl stop ${unit} 2>/dev/null; rm -rf ${dir}; rmdir /etc/infra-drill 2>/dev/null; true`).catch(() => undefined);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
