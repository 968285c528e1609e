/**
 * The executor: plays in order; within a play, batches (`serial`); within a batch, hosts in
 * parallel up to `forks`; each host's play in host-play.ts (tasks in task-run.ts, handlers in
 * handlers.ts, plan drift in plan-drift.ts). A failure policy (any_errors_fatal,
 * max_fail_percentage) or an abort stops the rollout. Unreachable hosts and failed tasks are
 * results, not exceptions.
 */
import type { Inventory } from '../inventory/types.js';
import type { Facts } from '../facts/types.js';
import type { Reporter, HostRecap } from '../report/events.js';
import type { Transport, LockMeta } from '../transport/types.js';
import type { PreparedPlay, PlanFile } from './types.js';
import type { RunControl } from './control.js';
import { forEachLimit } from './batches.js';
import { HostRuns, connectHost, type HostRun, type TransportSource } from './host-run.js';
import { HostViews, hostContext, type ContextEnv } from './host-context.js';
import { runHostPlay, type HostPlayEnv } from './host-play.js';
import { PlanRecorder } from './plan-drift.js';
import type { RunKeeper } from '../rollback/keeper.js';

export interface ExecutorDeps {
  inventory: Inventory;
  transports: TransportSource;
  reporter: Reporter;
  gatherFacts(run: Transport['run']): Promise<Facts>;
  /** Renders a template of a role dir with data. */
  renderFile(roleDir: string, src: string, data: Record<string, unknown>): Promise<string>;
  readRoleFile(roleDir: string, src: string): Promise<Buffer>;
  hostsMatching(pattern: string): string[];
  /** Where hosts' progress is kept (the session's, so it can record a crashed run); default: a fresh one. */
  hosts?: HostRuns;
}

export interface ExecuteOptions {
  runId: string;
  plays: PreparedPlay[];
  checkMode: boolean;
  /** After apply, check again and fail the task if it did not converge. */
  verify: boolean;
  forks: number;
  tags?: string[];
  skipTags?: string[];
  /** Take the per-host run lock at connect (apply, run, patch). */
  lock?: { meta: LockMeta; waitMs: number };
  /** Record planned changes (plan --out), fingerprinted with this plan's key. */
  recordPlan?: { key: Buffer };
  /** Refuse hosts whose state drifted since this plan (apply plan.json). */
  expectedPlan?: PlanFile;
  /** Stop / abort, set by the CLI on Ctrl-C. */
  control: RunControl;
  /** Keep what the run replaces, for `infra rollback` (never in check mode). */
  keep?: RunKeeper;
}

export interface ExecuteResult {
  recap: HostRecap[];
  plan: PlanFile['hosts'];
  /** Tasks that changed (or would change in check mode), per host, for the audit trail. */
  changedTasks: Record<string, string[]>;
  anyFailed: boolean;
  anyChanges: boolean;
  /** The rollout stopped early: a failure policy, or an abort. */
  aborted: boolean;
}

export async function execute(deps: ExecutorDeps, opts: ExecuteOptions): Promise<ExecuteResult> {
  const hosts = deps.hosts ?? new HostRuns(deps.reporter);
  const views = new HostViews(deps.inventory, deps.hostsMatching, (name) => hosts.find(name)?.facts);
  const connect = { transports: deps.transports, reporter: deps.reporter, lock: opts.lock, gatherFacts: deps.gatherFacts, pendingHandlers: true };
  // One connection attempt per joined host, even when tasks of two hosts ask for it at once.
  const joining = new Map<string, Promise<boolean>>();
  const join = async (name: string): Promise<HostRun> => {
    if (!deps.inventory.hosts.has(name)) throw new Error(`no host "${name}" in the inventory`);
    const other = hosts.get(name);
    if (!joining.has(name)) joining.set(name, connectHost(other, connect));
    if (!(await joining.get(name)) || other.down) throw new Error(`${name}: ${other.error ?? 'stopped earlier in this run'}`);
    return other;
  };
  const contexts: ContextEnv = { ...deps, views, join, keep: opts.checkMode ? undefined : opts.keep };
  const plan = opts.recordPlan ? new PlanRecorder(opts.recordPlan.key) : undefined;
  const env: HostPlayEnv = {
    ...opts,
    reporter: deps.reporter,
    plan,
    views,
    connect,
    context: (h, bt) => hostContext(contexts, h, bt, opts.checkMode),
    checkContext: (h, bt) => hostContext(contexts, h, bt, true),
  };

  let stoppedByPolicy = false;
  const stop = () => stoppedByPolicy || opts.control.stopping;
  for (const play of opts.plays) {
    if (stop()) break;
    deps.reporter.emit({ type: 'play.start', play: play.name, hosts: play.hosts });
    for (const batch of play.batches) {
      if (stop()) break;
      const before = new Set(batch.filter((n) => hosts.find(n)?.down));
      await forEachLimit(batch, opts.forks, (n) => (stop() ? Promise.resolve() : runHostPlay(env, play, hosts.get(n))));
      const failedNow = batch.filter((n) => !before.has(n) && hosts.find(n)?.down);
      if (play.anyErrorsFatal && failedNow.length > 0) stoppedByPolicy = true;
      if (play.maxFailPercentage !== undefined && (failedNow.length / batch.length) * 100 > play.maxFailPercentage) stoppedByPolicy = true;
    }
    deps.reporter.emit({ type: 'play.end', play: play.name });
  }

  const recap = hosts.recap(deps.transports.counters());
  return {
    recap,
    plan: plan?.hosts ?? {},
    changedTasks: hosts.changedTasks(),
    anyFailed: recap.some((r) => r.failed > 0 || r.unreachable || !!r.error),
    anyChanges: recap.some((r) => r.changed > 0),
    aborted: stoppedByPolicy || opts.control.aborted,
  };
}
