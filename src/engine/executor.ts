/**
 * The executor: plays in order; within a play, batches (`serial`); within a batch, hosts in
 * parallel up to `forks`; each host's tasks in order. check → (apply) → (verify) per task.
 * Handlers notified by changed tasks run once at the end of the play, even on a host whose
 * later task failed. Unreachable hosts and failed tasks are results, not exceptions.
 */
import { createHash } from 'node:crypto';
import type { Inventory } from '../inventory/types.js';
import type { Facts } from '../facts/types.js';
import type { Check, HostContext, HostView } from '../modules/types.js';
import type { Reporter, HostRecap, TaskStatus } from '../report/events.js';
import type { Transport, LockMeta, Counters } from '../transport/types.js';
import { HostUnreachable, HostRefused, HostLocked } from '../transport/types.js';
import { redact, redactDeep } from '../secrets/secret.js';
import type { BoundTask, PreparedPlay, PlannedTask, PlanFile } from './types.js';
import { forEachLimit } from './batches.js';
import { taskLabel, describeParamsError } from './task-label.js';
import { flushHandlers } from '../modules/meta.js';

export interface TransportSource {
  get(host: string): Transport;
  counters(): Record<string, Counters>;
}

export interface ExecutorDeps {
  inventory: Inventory;
  transports: TransportSource;
  reporter: Reporter;
  gatherFacts(run: Transport['run']): Promise<Facts>;
  /** Renders a template of a role dir with data. */
  renderFile(roleDir: string, src: string, data: Record<string, unknown>): Promise<string>;
  readRoleFile(roleDir: string, src: string): Promise<Buffer>;
  hostsMatching(pattern: string): string[];
}

export interface ExecuteOptions {
  plays: PreparedPlay[];
  checkMode: boolean;
  /** After apply, check again and fail the task if it did not converge. */
  verify: boolean;
  forks: number;
  tags?: string[];
  skipTags?: string[];
  /** Take the per-host run lock at connect (apply, run, patch). */
  lock?: { meta: LockMeta; waitMs: number };
  /** Record planned changes (plan --out). */
  recordPlan?: boolean;
  /** Refuse hosts whose state drifted since this plan (apply plan.json). */
  expectedPlan?: PlanFile;
  /** Set by the CLI on the first Ctrl-C: start nothing new. */
  shouldStop(): boolean;
}

export interface ExecuteResult {
  recap: HostRecap[];
  plan: PlanFile['hosts'];
  /** Tasks that changed (or would change in check mode), per host, for the audit trail. */
  changedTasks: Record<string, string[]>;
  anyFailed: boolean;
  anyChanges: boolean;
  aborted: boolean;
}

interface HostRun {
  name: string;
  transport?: Transport;
  facts?: Facts;
  connected: boolean;
  unreachable: boolean;
  failed: boolean;
  error?: string;
  startedAt: number;
  endedAt?: number;
  counts: { ok: number; changed: number; failed: number; skipped: number };
  changed: string[];
}

export async function execute(deps: ExecutorDeps, opts: ExecuteOptions): Promise<ExecuteResult> {
  const { reporter } = deps;
  const runs = new Map<string, HostRun>();
  const plan: PlanFile['hosts'] = {};
  let aborted = false;
  const hostRun = (name: string): HostRun => {
    let r = runs.get(name);
    if (!r) {
      r = {
        name,
        connected: false,
        unreachable: false,
        failed: false,
        startedAt: Date.now(),
        counts: { ok: 0, changed: 0, failed: 0, skipped: 0 },
        changed: [],
      };
      runs.set(name, r);
    }
    return r;
  };

  const hostView = (name: string): HostView => {
    const spec = deps.inventory.hosts.get(name)!;
    return { name, address: spec.conn.address, groups: spec.groups, vars: spec.vars, facts: runs.get(name)?.facts };
  };
  const hostsView = (pattern: string): HostView[] => deps.hostsMatching(pattern).map(hostView);

  // One attempt per host even when two hosts' tasks ask for the same one at once (onHost).
  const connecting = new Map<string, Promise<boolean>>();
  function connect(h: HostRun): Promise<boolean> {
    if (h.connected) return Promise.resolve(true);
    if (h.unreachable || h.failed) return Promise.resolve(false);
    let p = connecting.get(h.name);
    if (!p) connecting.set(h.name, (p = connectNow(h).finally(() => connecting.delete(h.name))));
    return p;
  }

  async function connectNow(h: HostRun): Promise<boolean> {
    reporter.emit({ type: 'host.connecting', host: h.name });
    const t0 = Date.now();
    try {
      h.transport = deps.transports.get(h.name);
      await h.transport.connect();
      if (opts.lock) await h.transport.lock(opts.lock.meta, opts.lock.waitMs);
      h.facts = await deps.gatherFacts((cmd, o) => h.transport!.run(cmd, o));
      h.connected = true;
      reporter.emit({ type: 'host.connected', host: h.name, ms: Date.now() - t0 });
      return true;
    } catch (e) {
      const msg = redact(errorMessage(e));
      if (e instanceof HostLocked || e instanceof HostRefused) {
        h.failed = true;
        h.error = msg;
        reporter.emit({ type: 'host.failed', host: h.name, error: msg });
      } else {
        h.unreachable = true;
        h.error = msg;
        reporter.emit({ type: 'host.unreachable', host: h.name, error: msg });
      }
      return false;
    }
  }

  function contextFor(h: HostRun, bt: BoundTask): HostContext {
    const t = h.transport!;
    const spec = deps.inventory.hosts.get(h.name)!;
    const templateData = () => ({
      vars: bt.vars,
      host: { name: h.name, address: spec.conn.address, groups: spec.groups },
      facts: h.facts,
      groups: groupsView(),
    });
    return {
      name: h.name,
      address: spec.conn.address,
      groups: spec.groups,
      vars: bt.vars,
      facts: h.facts!,
      checkMode: opts.checkMode,
      run: (cmd, o) => t.run(cmd, o),
      put: (path, bytes, o) => {
        if (opts.checkMode) throw new Error(`bug: a module tried to write ${path} in check mode`);
        return t.put(path, bytes, o);
      },
      get: (path) => t.get(path),
      render: (src, data) => {
        if (!bt.roleDir) throw new Error(`template ${src}: this task has no role or playbook directory`);
        return deps.renderFile(bt.roleDir, src, data ?? templateData());
      },
      roleFile: (src) => {
        if (!bt.roleDir) throw new Error(`file ${src}: this task has no role or playbook directory`);
        return deps.readRoleFile(bt.roleDir, src);
      },
      hosts: hostsView,
      onHost: async (name) => {
        if (!deps.inventory.hosts.has(name)) throw new Error(`no host "${name}" in the inventory`);
        const other = hostRun(name);
        if (!(await connect(other)) || other.failed || other.unreachable) throw new Error(`${name}: ${other.error ?? 'failed earlier in this run'}`);
        return contextFor(other, bt);
      },
    };
  }

  let groupsCache: Record<string, HostView[]> | undefined;
  function groupsView(): Record<string, HostView[]> {
    if (!groupsCache) {
      groupsCache = {};
      for (const g of deps.inventory.groups.keys()) groupsCache[g] = hostsView(g);
    }
    return groupsCache;
  }

  interface TaskOutcome {
    status: TaskStatus;
    check?: Check;
    error?: string;
  }

  /** check → apply → verify for one task. Never throws. */
  async function runTask(h: HostRun, bt: BoundTask, play: PreparedPlay, handler: boolean): Promise<TaskOutcome> {
    const mod = bt.task.module;
    const parsed = mod.params.safeParse(bt.task.params);
    const label = taskLabel(bt, parsed.success ? parsed.data : undefined);
    reporter.emit({ type: 'task.start', host: h.name, task: label, module: mod.name });
    const t0 = Date.now();
    const finish = (o: TaskOutcome): TaskOutcome => {
      reporter.emit({
        type: 'task.result',
        host: h.name,
        task: label,
        module: mod.name,
        status: o.status,
        changes: o.check?.changes ?? [],
        reason: o.check?.reason,
        warning: o.check?.warning,
        diff: o.check?.diff,
        error: o.error === undefined ? undefined : redact(o.error),
        ms: Date.now() - t0,
        handler,
      });
      h.counts[o.status === 'changed' ? 'changed' : o.status]++;
      if (o.status === 'changed') h.changed.push(label);
      return o;
    };
    if (!parsed.success) {
      return finish({ status: 'failed', error: describeParamsError(bt, parsed.error) });
    }
    const ctx = contextFor(h, bt);
    try {
      const c = await mod.check(ctx, parsed.data);
      if (opts.recordPlan && !handler) recordPlanned(h.name, play.index, label, mod.name, c);
      if (c.changes.length === 0) return finish({ status: c.skipped ? 'skipped' : 'ok', check: c });
      if (opts.checkMode) return finish({ status: 'changed', check: c });
      await mod.apply(ctx, parsed.data, c);
      if (opts.verify) {
        const after = await mod.check(ctx, parsed.data);
        if (after.changes.length > 0 && !isAlwaysAction(after)) {
          return finish({
            status: 'failed',
            check: c,
            error: `did not converge: still ${after.changes.map((x) => x.what).join('; ')}`,
          });
        }
      }
      return finish({ status: 'changed', check: c });
    } catch (e) {
      if (e instanceof HostUnreachable) {
        h.unreachable = true;
        h.error = `connection lost: state unknown (${redact(e.message)})`;
        reporter.emit({ type: 'host.unreachable', host: h.name, error: h.error });
        return finish({ status: 'failed', error: 'connection lost: state unknown' });
      }
      return finish({ status: 'failed', error: errorMessage(e) });
    }
  }

  function recordPlanned(host: string, playIndex: number, task: string, module: string, c: Check): void {
    const byPlay = (plan[host] ??= {});
    (byPlay[String(playIndex)] ??= []).push({
      task,
      module,
      changes: redactDeep(c.changes),
      fingerprint: fingerprint(c),
    });
  }

  /** Apply from a plan: a check-only pass must match the plan's fingerprints exactly. */
  async function driftCheck(h: HostRun, play: PreparedPlay, tasks: BoundTask[]): Promise<string | undefined> {
    const expected = opts.expectedPlan?.hosts[h.name]?.[String(play.index)];
    if (!expected) return `not in the plan (plan was made for other hosts)`;
    const runnable = tasks.filter((bt) => selectedByTags(bt, opts));
    if (runnable.length !== expected.length) return `task list changed since plan (${expected.length} → ${runnable.length} tasks)`;
    for (let i = 0; i < runnable.length; i++) {
      const bt = runnable[i];
      const parsed = bt.task.module.params.safeParse(bt.task.params);
      if (!parsed.success) return `${bt.task.module.name}: invalid parameters`;
      const ctx = { ...contextFor(h, bt), checkMode: true, put: () => Promise.reject(new Error('check pass')) };
      const c = await bt.task.module.check(ctx, parsed.data);
      if (fingerprint(c) !== expected[i].fingerprint) return `${expected[i].task}`;
    }
    return undefined;
  }

  async function runHostPlay(play: PreparedPlay, name: string): Promise<void> {
    const h = hostRun(name);
    if (h.failed || h.unreachable) return;
    if (!(await connect(h))) return;
    const hp = play.byHost.get(name)!;
    let tasks: BoundTask[];
    try {
      tasks = hp.tasks(h.facts!, hostsView);
    } catch (e) {
      h.failed = true;
      h.error = redact(errorMessage(e));
      reporter.emit({ type: 'host.failed', host: name, error: h.error });
      return;
    }
    if (opts.expectedPlan) {
      let drift: string | undefined;
      try {
        drift = await driftCheck(h, play, tasks);
      } catch (e) {
        drift = `re-check failed: ${errorMessage(e)}`;
      }
      if (drift) {
        h.failed = true;
        h.error = redact(`drifted since plan: ${drift}`);
        reporter.emit({ type: 'host.failed', host: name, error: h.error });
        return;
      }
    }
    const notified = new Set<string>();
    /** The notified handlers, in declared order, each once; false when one failed. */
    const runNotified = async (): Promise<boolean> => {
      let ok = true;
      for (const [n, bt] of hp.handlers) {
        if (!notified.has(n) || h.unreachable) continue;
        notified.delete(n);
        const o = await runTask(h, bt, play, true);
        if (o.status === 'failed') ok = false;
      }
      return ok;
    };
    for (const bt of tasks) {
      if (opts.shouldStop() || h.unreachable) break;
      if (!selectedByTags(bt, opts)) continue;
      const o = await runTask(h, bt, play, false);
      if (o.status === 'changed') {
        for (const n of bt.task.notify) {
          if (!hp.handlers.has(n)) {
            h.failed = true;
            h.error = `${bt.roleName ? `role ${bt.roleName}: ` : ''}a task notifies unknown handler "${n}"`;
            reporter.emit({ type: 'host.failed', host: name, error: h.error });
          }
          notified.add(n);
        }
      }
      if (o.status === 'failed' && !bt.task.ignoreErrors) {
        h.failed = true;
        break;
      }
      // meta.flushHandlers: what was notified so far runs here, not at the end of the play.
      if (bt.task.module === flushHandlers.module && !(await runNotified())) {
        h.failed = true;
        break;
      }
    }
    // A notified handler is never lost: it runs even after a later task failed.
    if (!(await runNotified())) h.failed = true;
  }

  for (const play of opts.plays) {
    if (aborted || opts.shouldStop()) break;
    reporter.emit({ type: 'play.start', play: play.name, hosts: play.hosts });
    for (const batch of play.batches) {
      if (aborted || opts.shouldStop()) break;
      const before = new Set(batch.filter((n) => isDown(runs.get(n))));
      await forEachLimit(batch, opts.forks, (n) => runHostPlay(play, n));
      const failedNow = batch.filter((n) => !before.has(n) && isDown(runs.get(n)));
      if (play.anyErrorsFatal && failedNow.length > 0) aborted = true;
      if (
        play.maxFailPercentage !== undefined &&
        (failedNow.length / batch.length) * 100 > play.maxFailPercentage
      ) {
        aborted = true;
      }
    }
    reporter.emit({ type: 'play.end', play: play.name });
  }

  const counters = deps.transports.counters();
  const recap: HostRecap[] = [...runs.values()].map((h) => ({
    host: h.name,
    ...h.counts,
    unreachable: h.unreachable,
    error: h.error,
    durationMs: (h.endedAt ?? Date.now()) - h.startedAt,
    counters: counters[h.name],
  }));
  const changedTasks: Record<string, string[]> = {};
  for (const h of runs.values()) if (h.changed.length) changedTasks[h.name] = h.changed;
  return {
    recap,
    plan,
    changedTasks,
    anyFailed: recap.some((r) => r.failed > 0 || r.unreachable || !!r.error),
    anyChanges: recap.some((r) => r.changed > 0),
    aborted,
  };
}

function isDown(h: HostRun | undefined): boolean {
  return !!h && (h.failed || h.unreachable);
}

/** `restarted`/`reloaded` and unguarded commands act every run by design: not a convergence bug. */
function isAlwaysAction(c: Check): boolean {
  return !!c.always;
}

export function selectedByTags(bt: BoundTask, opts: { tags?: string[]; skipTags?: string[] }): boolean {
  const tags = new Set([...bt.task.tags, ...(bt.roleName ? [bt.roleName] : [])]);
  if (opts.skipTags?.some((t) => tags.has(t))) return false;
  if (!opts.tags || opts.tags.length === 0) return true;
  return opts.tags.some((t) => tags.has(t) || t === 'all');
}

export function fingerprint(c: Check): string {
  const basis = redactDeep({ changes: c.changes, diff: c.diff ?? null, observed: c.observed ?? null });
  return createHash('sha256').update(JSON.stringify(basis)).digest('hex').slice(0, 16);
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
