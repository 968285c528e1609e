/**
 * One host's patch, step by step, each step reported as a task result (module patch.*) and
 * written to the host's report:
 *
 *   take out → pre hooks → upgrade → reboot, or restart its services → health → put back
 *
 * A failure stops the host where it is: after the upgrade has started the host stays out of
 * service (drained, VIP away) for a person to look at; a failure to take it out puts it back
 * (nothing on it changed). Either way the rollout stops (run.ts).
 */
import type { Change, Diff } from '../modules/types.js';
import type { Reporter, TaskStatus } from '../report/events.js';
import type { HostRun } from '../engine/host-run.js';
import type { RunControl } from '../engine/control.js';
import { redact } from '../secrets/secret.js';
import { messageOf } from '../errors.js';
import { FAILED_UNITS_COMMAND, SCAN_COMMAND, afterCommand, needsReboot, parseAfter, parseFailedUnits, parseScan, selected, upgradeCommand, type Scan, type Selection } from './apt.js';
import { tail } from '../modules/run-checked.js';
import { decideReboot, rebootAndWait, restartServices, type RebootMode } from './reboot.js';
import type { HostPolicy } from './policy.js';
import type { HostReport } from './report.js';
import { runOk, type Remote } from './remote.js';
import type { Strategy } from './strategy.js';

const UPGRADE_TIMEOUT_MS = 30 * 60_000;
const HOOK_TIMEOUT_MS = 5 * 60_000;

export interface PatchEnv {
  remote: Remote;
  reporter: Reporter;
  control: RunControl;
  hostRun(host: string): HostRun;
  selection: Selection;
  /** --check: what is pending counts as "would change"; in a run the scan itself changes nothing. */
  check: boolean;
  /** --reboot: over every policy's. */
  reboot?: RebootMode;
  /** Other hosts of the run are reached through it. */
  carriesRun(host: string): boolean;
}

interface StepResult {
  detail: string;
  changes?: Change[];
  diff?: Diff[];
  warning?: string;
  /** 'ok': it found nothing to do (default: changed). */
  status?: TaskStatus;
}

/** Runs one step: task.start/task.result events, the host's counts, the report's steps. Never throws. */
async function step(env: PatchEnv, report: HostReport, module: string, label: string, fn: () => Promise<StepResult>): Promise<boolean> {
  const host = report.host;
  env.reporter.emit({ type: 'task.start', host, task: label, module });
  const t0 = Date.now();
  let r: StepResult | undefined;
  let error: string | undefined;
  try {
    r = await fn();
  } catch (e) {
    error = env.control.aborted ? `aborted during "${label}": the command on the host was killed, state unknown` : redact(messageOf(e));
  }
  const ms = Date.now() - t0;
  const status: TaskStatus = error !== undefined ? 'failed' : (r!.status ?? 'changed');
  env.reporter.emit({
    type: 'task.result',
    host,
    task: label,
    module,
    status,
    changes: r?.changes ?? (status === 'changed' ? [{ what: r!.detail }] : []),
    reason: status === 'ok' ? r?.detail : undefined,
    warning: r?.warning,
    diff: r?.diff,
    error,
    ms,
  });
  env.hostRun(host).count(status, label);
  report.steps.push({ step: label, ok: error === undefined, ms, detail: error ?? r!.detail });
  if (error !== undefined) {
    report.outcome = 'failed';
    report.error = `${label}: ${error}`;
    env.hostRun(host).fail(report.error);
  }
  return error === undefined;
}

/** Lists the host's pending updates (refreshing apt's lists: the only thing it changes). */
export async function scanHost(env: PatchEnv, report: HostReport): Promise<Scan | undefined> {
  let scan: Scan | undefined;
  const ok = await step(env, report, 'patch.updates', 'pending updates', async () => {
    const r = await env.remote.run(report.host, SCAN_COMMAND, { timeoutMs: 10 * 60_000 });
    if (r.code === 90) throw new Error(`apt-get update failed:\n${tail(r.stderr, 5)}`);
    if (r.code !== 0) throw new Error(`simulating the upgrade failed (exit ${r.code}):\n${tail(r.stdout + r.stderr, 5)}`);
    scan = parseScan(r.stdout);
    report.pending = scan.updates;
    const todo = selected(scan.updates, env.selection);
    const changes = scan.updates.map((u) => ({
      what: `${todo.includes(u) ? 'upgrade' : 'not selected'} ${u.name}${u.security ? ' (security)' : ''}${u.reboot ? ' (reboot)' : ''}`,
      from: u.from ?? '(new)',
      to: u.to,
    }));
    if (todo.length === 0) {
      const others = scan.updates.length ? `; ${scan.updates.length} update(s) not from a security suite (--all installs them)` : '';
      return { status: 'ok', detail: `nothing to patch${others}` };
    }
    // Predicted from the package names (the reboot-required file appears only after the upgrade).
    const pending = scan.rebootPending && (scan.rebootPending.length ? scan.rebootPending : ['/var/run/reboot-required']);
    report.reboot.required = [...new Set([...todo.filter((u) => u.reboot).map((u) => u.name), ...(pending ?? [])])];
    const reboot = report.reboot.required.length ? ' — a reboot would follow' : '';
    return {
      status: env.check ? 'changed' : 'ok',
      detail: `${todo.length} update(s) to install${reboot}`,
      changes,
      diff: todo.map((u) => ({ kind: 'package' as const, name: u.name, before: u.from, after: u.to })),
      warning: scan.rebootPending ? `a reboot is already pending (${scan.rebootPending.join(', ') || '/var/run/reboot-required'})` : undefined,
    };
  });
  return ok ? scan : undefined;
}

/** The whole patch of one host; true when it is patched and back in service. */
export async function patchHost(env: PatchEnv, hp: HostPolicy, strategy: Strategy, scan: Scan, report: HostReport): Promise<boolean> {
  const { host, policy } = hp;
  const { remote } = env;
  const todo = selected(scan.updates, env.selection);

  const out = { how: strategy.describe, from: new Date().toISOString(), t0: Date.now() };
  if (!strategy.inPlace) {
    report.outOfService = { how: out.how, from: out.from };
    if (!(await step(env, report, 'patch.take-out', 'take out of service', async () => ({ detail: await strategy.takeOut(host) })))) {
      // Nothing on the host changed yet: back into service, best effort (the run stops anyway).
      const back = await strategy.putBack(host).then((d) => `put back: ${d}`, (e: Error) => `could not put it back: ${e.message}`);
      report.steps.push({ step: 'put back after the failed take-out', ok: !back.startsWith('could not'), ms: 0, detail: back });
      if (!back.startsWith('could not')) report.outOfService = undefined;
      return false;
    }
  }
  for (const cmd of policy.pre) {
    const ok = await step(env, report, 'patch.pre', `pre: ${cmd}`, async () => ({ detail: (await runOk(remote, host, cmd, `pre hook "${cmd}"`, { timeoutMs: HOOK_TIMEOUT_MS })).stdout.trim() || 'exit 0' }));
    if (!ok) return false;
  }
  const failedBefore = parseFailedUnits((await remote.run(host, FAILED_UNITS_COMMAND).catch(() => ({ stdout: '' }))).stdout);

  let upgraded: HostReport['upgraded'] = [];
  let rebootPending: string[] | null = null;
  const upgradeOk = await step(env, report, 'patch.upgrade', `upgrade ${env.selection === 'all' ? 'all packages' : 'security updates'}`, async () => {
    await runOk(remote, host, upgradeCommand(env.selection, scan.updates), 'apt-get upgrade', { timeoutMs: UPGRADE_TIMEOUT_MS });
    const after = parseAfter((await runOk(remote, host, afterCommand(scan.updates.map((u) => u.name)), 'read the installed versions')).stdout);
    upgraded = scan.updates
      .filter((u) => after.installed.has(u.name) && after.installed.get(u.name) !== u.from)
      .map((u) => ({ name: u.name, from: u.from, to: after.installed.get(u.name)!, security: u.security }));
    report.upgraded = upgraded;
    rebootPending = after.rebootPending;
    const missed = todo.filter((u) => !upgraded.some((x) => x.name === u.name)).map((u) => u.name);
    return {
      detail: `${upgraded.length} package(s) upgraded`,
      changes: upgraded.map((u) => ({ what: `upgrade ${u.name}${u.security ? ' (security)' : ''}`, from: u.from ?? '(new)', to: u.to })),
      diff: upgraded.map((u) => ({ kind: 'package' as const, name: u.name, before: u.from, after: u.to })),
      warning: missed.length ? `not upgraded although pending: ${missed.join(', ')} (held back?)` : undefined,
    };
  });
  if (!upgradeOk) return false;

  const required = [...new Set([...(rebootPending ?? []), ...upgraded.filter((u) => needsReboot(u.name)).map((u) => u.name)])];
  if (rebootPending && required.length === 0) required.push('/var/run/reboot-required');
  const decision = decideReboot({
    mode: env.reboot ?? policy.reboot,
    required,
    container: remote.facts(host).container,
    carriesRun: env.carriesRun(host),
    restartServices: policy.restart_services,
  });
  report.reboot = { required, done: false, note: decision.note, restarted: [] };
  if (decision.action === 'reboot') {
    const ok = await step(env, report, 'patch.reboot', 'reboot', async () => ({ detail: await rebootAndWait(remote, host, policy.reboot_timeout_s * 1000) }));
    if (!ok) return false;
    report.reboot.done = true;
  } else if (decision.action === 'restart-services') {
    const ok = await step(env, report, 'patch.restart', 'restart upgraded services', async () => {
      const units = await restartServices(remote, host, upgraded.map((u) => u.name));
      report.reboot.restarted = units;
      return { detail: units.length ? `restarted ${units.join(', ')}` : 'no running service of the upgraded packages', status: units.length ? 'changed' : 'ok', warning: decision.note };
    });
    if (!ok) return false;
  } else if (decision.note) {
    env.reporter.emit({ type: 'task.result', host, task: 'reboot', module: 'patch.reboot', status: 'skipped', changes: [], reason: decision.note, warning: decision.note, ms: 0 });
  }

  const healthy = await step(env, report, 'patch.health', 'health checks', async () => {
    const failedNow = parseFailedUnits((await runOk(remote, host, FAILED_UNITS_COMMAND, 'list failed units')).stdout);
    const newlyFailed = failedNow.filter((u) => !failedBefore.includes(u));
    if (newlyFailed.length) throw new Error(`units failed after the upgrade: ${newlyFailed.join(', ')}`);
    for (const cmd of policy.post) {
      const r = await remote.run(host, cmd, { timeoutMs: HOOK_TIMEOUT_MS });
      if (r.code !== 0) throw new Error(`post-check "${cmd}" failed (exit ${r.code})${tail(r.stderr + r.stdout, 5) ? `:\n${tail(r.stderr + r.stdout, 5)}` : ''}`);
    }
    return { detail: `no new failed unit${policy.post.length ? `; ${policy.post.length} post-check(s) passed` : ''}`, status: 'ok' };
  });
  if (!healthy) return false;

  if (!strategy.inPlace) {
    const back = await step(env, report, 'patch.put-back', 'back into service', async () => ({ detail: await strategy.putBack(host) }));
    if (!back) return false;
    report.outOfService = { how: out.how, from: out.from, to: new Date().toISOString(), ms: Date.now() - out.t0, back: report.steps[report.steps.length - 1].detail };
  }
  report.outcome = 'patched';
  return true;
}
