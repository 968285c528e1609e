/**
 * After the upgrade: reboot (and wait for SSH and the host's services), or — where a reboot
 * is not possible or not wanted (a container, the bastion carrying the run, policy never) —
 * restart the running services of the upgraded packages and say that a reboot is required.
 */
import { runningUnitsCommand, parseUnits } from './apt.js';
import { runOk, sleep, type Remote } from './remote.js';
import { sh } from '../shell/quote.js';

export type RebootMode = 'auto' | 'never' | 'always';

export interface RebootInput {
  mode: RebootMode;
  /** Why a reboot is needed (packages from /var/run/reboot-required.pkgs, kernel/libc/systemd upgraded); empty: not needed. */
  required: string[];
  /** systemd-detect-virt --container: "none" on a VM or bare metal. */
  container: string;
  /** Other hosts of the run are reached through it: rebooting it cuts the run's connections. */
  carriesRun: boolean;
  restartServices: boolean;
}

export interface RebootDecision {
  action: 'reboot' | 'restart-services' | 'none';
  /** What people read in the report when there is no reboot although one is required. */
  note?: string;
}

/** Pure: what happens after the upgrade. */
export function decideReboot(i: RebootInput): RebootDecision {
  const need = i.required.length > 0;
  const instead = i.restartServices ? 'restart-services' : 'none';
  const why = need ? `reboot required (${i.required.join(', ')})` : '';
  if (i.carriesRun) {
    return { action: instead, note: need ? `${why}: not rebooted — it carries this run's connections; reboot it by hand after the run` : undefined };
  }
  if (i.mode === 'never') return { action: instead, note: need ? `${why}: not rebooted (reboot: never)` : undefined };
  if (i.container !== 'none') {
    return { action: instead, note: need || i.mode === 'always' ? `${why || 'reboot asked (reboot: always)'}: a container cannot reboot; ${i.restartServices ? 'its upgraded services were restarted instead' : 'nothing restarted (restart_services: false)'}` : undefined };
  }
  if (i.mode === 'always' || need) return { action: 'reboot' };
  return { action: instead };
}

/** The running services shipped by the packages, restarted one by one (systemd itself re-executed). Returns the units restarted. */
export async function restartServices(remote: Remote, host: string, packages: string[]): Promise<string[]> {
  if (packages.length === 0) return [];
  if (packages.includes('systemd')) await runOk(remote, host, 'systemctl daemon-reexec', 're-execute systemd');
  const units = parseUnits((await runOk(remote, host, runningUnitsCommand(packages), 'list the services of the upgraded packages')).stdout);
  for (const u of units) await runOk(remote, host, sh`systemctl restart ${u}`, `restart ${u}`, { timeoutMs: 180_000 });
  return units;
}

const BOOT_ID = 'cat /proc/sys/kernel/random/boot_id';

/**
 * Reboots through a transient systemd timer (the command returns before the connection
 * drops), then reconnects every few seconds until the boot id changed, and waits for systemd
 * to finish starting the host's services. Returns what happened, for the report.
 */
export async function rebootAndWait(remote: Remote, host: string, timeoutMs: number): Promise<string> {
  const t0 = Date.now();
  const before = (await runOk(remote, host, BOOT_ID, 'read the boot id')).stdout.trim();
  await runOk(remote, host, 'systemd-run --quiet --on-active=2 systemctl reboot', 'schedule the reboot');
  const deadline = t0 + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    await sleep(5_000);
    try {
      await remote.reconnect(host);
      const now = (await runOk(remote, host, BOOT_ID, 'read the boot id')).stdout.trim();
      if (now !== before) break;
      last = 'still the same boot';
    } catch (e) {
      last = (e as Error).message.split('\n')[0];
    }
    if (Date.now() > deadline) throw new Error(`${host} did not come back from its reboot within ${Math.round(timeoutMs / 1000)} s (${last})`);
  }
  const left = Math.max(30_000, deadline - Date.now());
  const state = (await remote.run(host, `timeout ${Math.ceil(left / 1000)} systemctl is-system-running --wait`, { timeoutMs: left + 10_000 })).stdout.trim();
  if (state !== 'running' && state !== 'degraded') throw new Error(`${host} rebooted but systemd is "${state || 'not answering'}"`);
  return `rebooted, back in ${Math.round((Date.now() - t0) / 1000)} s (systemd: ${state})`;
}
