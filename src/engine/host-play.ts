/**
 * One play on one host: connect (on its first play), build its task list from its facts,
 * refuse it if it drifted since the plan being applied, run its tasks in order, then the
 * handlers they notified (and those an earlier run left pending).
 */
import type { Check, HostContext } from '../modules/types.js';
import { messageOf } from '../errors.js';
import { HostUnreachable } from '../transport/types.js';
import type { BoundTask, PlanFile, PreparedPlay } from './types.js';
import { connectHost, type ConnectOptions, type HostRun } from './host-run.js';
import type { HostViews } from './host-context.js';
import { driftSincePlan } from './plan-drift.js';
import { PendingHandlers, PlayHandlers } from './handlers.js';
import { runTask, type TaskEnv, type TaskOutcome } from './task-run.js';
import { taskLabel } from './task-label.js';
import { prefetchReads } from './batched-reads.js';
import type { RunKeeper } from '../rollback/keeper.js';
import { flushHandlers } from '../modules/meta.js';

export interface HostPlayEnv extends TaskEnv {
  runId: string;
  connect: ConnectOptions;
  views: HostViews;
  tags?: string[];
  skipTags?: string[];
  /** apply plan.json: refuse a host whose state differs from the plan's. */
  expectedPlan?: PlanFile;
  /** The context of a read-only re-check (drift), whatever the run's mode. */
  checkContext(h: HostRun, bt: BoundTask): HostContext;
  /** Records each changed task in the host's run manifest (for history and rollback). */
  keep?: RunKeeper;
}

export async function runHostPlay(env: HostPlayEnv, play: PreparedPlay, h: HostRun): Promise<void> {
  if (h.down) return;
  try {
    if (!(await connectHost(h, env.connect))) return;
    const t = h.transport!;
    h.pending ??= await PendingHandlers.load((cmd, o) => t.run(cmd, o));
    const hp = play.byHost.get(h.name)!;
    const tasks = hp.tasks(h.facts!, (pattern) => env.views.matching(pattern)).filter((bt) => selectedByTags(bt, env));
    if (env.expectedPlan) {
      const drift = await driftOf(env, env.expectedPlan, h, play, tasks);
      if (drift) return h.refuse(`drifted since plan: ${drift}`);
    }
    await prefetchReads(h, tasks, (bt) => env.checkContext(h, bt));
    const handlers = new PlayHandlers(env, h, play, hp.handlers, h.pending);
    for (const bt of tasks) {
      if (env.control.stopping || h.down) break;
      const o = await runTask(env, h, bt, { playIndex: play.index, handler: false });
      if (o.status === 'changed') {
        await handlers.notify(bt);
        await recordChanged(env, h, play, bt, o);
      }
      if (o.status === 'failed' && !bt.task.ignoreErrors) h.taskFailed();
      // meta.flushHandlers: what was notified so far runs here, not at the end of the play.
      if (bt.task.module === flushHandlers.module && !h.down) await handlers.run();
    }
    // A notified handler is never lost: it runs even after a later task failed.
    await handlers.run();
  } catch (e) {
    // Before any task: the pending-handlers store, the role's task list, or the drift re-check.
    if (e instanceof HostUnreachable) h.lostMidway(e);
    else h.refuse(messageOf(e));
  } finally {
    h.finish();
  }
}

async function driftOf(env: HostPlayEnv, plan: PlanFile, h: HostRun, play: PreparedPlay, tasks: BoundTask[]): Promise<string | undefined> {
  const check = (bt: BoundTask, params: unknown): Promise<Check> => bt.task.module.check(env.checkContext(h, bt), params);
  try {
    return await driftSincePlan(plan, h.name, play.index, tasks, check);
  } catch (e) {
    if (e instanceof HostUnreachable) throw e;
    return `re-check failed: ${messageOf(e)}`;
  }
}

/** The task's record in the host's manifest; a manifest that cannot be written stops the host. */
async function recordChanged(env: HostPlayEnv, h: HostRun, play: PreparedPlay, bt: BoundTask, o: TaskOutcome): Promise<void> {
  if (!env.keep || env.checkMode) return;
  const keeper = env.keep.host(h.name);
  try {
    await keeper.recordTask((cmd, opts) => h.transport!.run(cmd, opts), {
      task: keeper.current,
      label: taskLabel(bt, bt.task.params),
      module: bt.task.module.name,
      ...(bt.roleName ? { role: bt.roleName } : {}),
      play: play.name,
      notify: bt.task.notify,
      ...activateOf(bt.task.params),
      changes: o.check?.changes ?? [],
    });
  } catch (e) {
    if (e instanceof HostUnreachable) h.lostMidway(e);
    else h.fail(messageOf(e));
  }
}

/** A module that makes its files live itself (confirm.files) names the command in `activate`: a rollback runs it again. */
function activateOf(params: unknown): { activate?: string } {
  const a = (params as { activate?: unknown } | null)?.activate;
  return typeof a === 'string' ? { activate: a } : {};
}

function selectedByTags(bt: BoundTask, opts: { tags?: string[]; skipTags?: string[] }): boolean {
  const tags = new Set([...bt.task.tags, ...(bt.roleName ? [bt.roleName] : [])]);
  if (opts.skipTags?.some((t) => tags.has(t))) return false;
  if (!opts.tags || opts.tags.length === 0) return true;
  return opts.tags.some((t) => tags.has(t) || t === 'all');
}
