/**
 * One task on one host: check → (apply) → (verify), reported as one task.result and counted
 * once. Never throws: a module error fails the task; a lost connection fails it and makes the
 * host unreachable; an abort fails it and stops the host.
 */
import { hasChanges, type Check, type HostContext } from '../modules/types.js';
import type { Reporter, TaskStatus } from '../report/events.js';
import { HostUnreachable } from '../transport/types.js';
import { redact } from '../secrets/secret.js';
import { messageOf } from '../errors.js';
import type { BoundTask } from './types.js';
import { STATE_UNKNOWN, type HostRun } from './host-run.js';
import type { PlanRecorder } from './plan-drift.js';
import type { RunControl } from './control.js';
import { taskLabel, describeParamsError } from './task-label.js';
import { withPrefetched } from './batched-reads.js';

export interface TaskEnv {
  reporter: Reporter;
  checkMode: boolean;
  /** After apply, check again and fail the task if it did not converge. */
  verify: boolean;
  control: RunControl;
  /** Set when making a plan: every task's check is recorded. */
  plan?: PlanRecorder;
  context(h: HostRun, bt: BoundTask): HostContext;
}

export interface TaskOutcome {
  status: TaskStatus;
  check?: Check;
  error?: string;
}

export async function runTask(
  env: TaskEnv,
  h: HostRun,
  bt: BoundTask,
  o: { playIndex: number; handler: boolean; /** Shown after the label: why it runs. */ why?: string },
): Promise<TaskOutcome> {
  const mod = bt.task.module;
  const parsed = mod.params.safeParse(bt.task.params);
  const label = taskLabel(bt, parsed.success ? parsed.data : undefined) + (o.why ? ` (${o.why})` : '');
  env.reporter.emit({ type: 'task.start', host: h.name, task: label, module: mod.name });
  const t0 = Date.now();
  const finish = (r: TaskOutcome): TaskOutcome => {
    env.reporter.emit({
      type: 'task.result',
      host: h.name,
      task: label,
      module: mod.name,
      status: r.status,
      changes: r.check?.changes ?? [],
      reason: r.check?.reason,
      warning: r.check?.warning,
      diff: r.check?.diff,
      error: r.error === undefined ? undefined : redact(r.error),
      ms: Date.now() - t0,
      handler: o.handler,
    });
    h.count(r.status, label);
    return r;
  };
  if (!parsed.success) return finish({ status: 'failed', error: describeParamsError(bt, parsed.error) });
  const ctx = env.context(h, bt);
  try {
    const c = await mod.check(withPrefetched(ctx, h), parsed.data);
    if (env.plan && !o.handler) env.plan.record(h.name, o.playIndex, label, mod.name, c);
    if (!hasChanges(c)) return finish({ status: c.skipped ? 'skipped' : 'ok', check: c });
    if (env.checkMode) return finish({ status: 'changed', check: c });
    try {
      await mod.apply(ctx, parsed.data, c);
    } finally {
      // The host changed (or may have, if apply failed halfway): later reads go to it again.
      h.forgetReads();
    }
    if (env.verify) {
      const after = await mod.check(ctx, parsed.data);
      // `restarted` and unguarded commands act on every run by design: not a convergence bug.
      if (after.changes.length > 0 && !after.always) {
        return finish({ status: 'failed', check: c, error: `did not converge: still ${after.changes.map((x) => x.what).join('; ')}` });
      }
    }
    return finish({ status: 'changed', check: c });
  } catch (e) {
    if (env.control.aborted) {
      h.fail(`aborted during "${label}": state unknown`);
      return finish({ status: 'failed', error: 'aborted: the command running on the host was killed' });
    }
    if (e instanceof HostUnreachable) {
      h.lostMidway(e);
      return finish({ status: 'failed', error: STATE_UNKNOWN });
    }
    return finish({ status: 'failed', error: messageOf(e) });
  }
}
