/**
 * One host's side of a run: its transport, facts, counts and fate. Every way a host stops —
 * refused before any task, a failed task, a lost connection — goes through a method here, so
 * the recap and the audit trail always count it and say why.
 */
import type { Facts } from '../facts/types.js';
import type { HostRecap, Reporter, TaskStatus } from '../report/events.js';
import type { Counters, LockMeta, RunResult, Transport } from '../transport/types.js';
import { HostUnreachable } from '../transport/types.js';
import { redact } from '../secrets/secret.js';
import { messageOf } from '../errors.js';
import { PendingHandlers } from './handlers.js';
import { joinFirstReads } from './batched-reads.js';

export const STATE_UNKNOWN = 'connection lost: state unknown';

/** Where transports come from (the run's TransportPool, or a fake in tests). */
export interface TransportSource {
  /** The host's transport for this run: one session, shared by every task. */
  get(host: string): Transport;
  /** A new transport through the same route, shared with nobody (a probe); the caller closes it. */
  open(host: string): Transport;
  counters(): Record<string, Counters>;
}

export class HostRun {
  transport?: Transport;
  facts?: Facts;
  connected = false;
  /** Set once the host stops: no later task or play starts on it. */
  down?: 'failed' | 'unreachable';
  error?: string;
  readonly startedAt = Date.now();
  endedAt?: number;
  readonly counts = { ok: 0, changed: 0, failed: 0, skipped: 0 };
  /** Labels of the tasks that changed (or would), for the audit trail. */
  readonly changed: string[] = [];
  /** Handler notifications stored on the host (read on its first play). */
  pending?: PendingHandlers;
  /** Reads of the host's state shared by its tasks (HostContext.cached); cleared by any apply. */
  readonly reads = new Map<string, Promise<unknown>>();
  /** Results of the batched first reads of its tasks, by command (batched-reads.ts); cleared by any apply. */
  readonly prefetched = new Map<string, RunResult>();

  constructor(
    readonly name: string,
    private readonly reporter: Reporter,
  ) {}

  /** Refused as a whole (lock held, become rejected, drifted...): counted as failed, with the reason. */
  refuse(reason: string): void {
    this.counts.failed++;
    this.fail(reason);
  }

  /** Stopped with a reason (its failed task, if any, is already counted). */
  fail(reason: string): void {
    this.down = 'failed';
    this.error = redact(reason);
    this.reporter.emit({ type: 'host.failed', host: this.name, error: this.error });
  }

  /** The connection could not be made, or is gone. */
  lose(reason: string): void {
    this.down = 'unreachable';
    this.error = redact(reason);
    this.reporter.emit({ type: 'host.unreachable', host: this.name, error: this.error });
  }

  /** The connection died while a command ran: what it did on the host is unknown. */
  lostMidway(e: unknown): void {
    const cause = messageOf(e);
    this.lose(/state unknown/.test(cause) ? cause : `${STATE_UNKNOWN} (${cause})`);
  }

  /** A task failed (its result says why): the host stops once its notified handlers ran. */
  taskFailed(): void {
    this.down ??= 'failed';
  }

  count(status: TaskStatus, label: string): void {
    this.counts[status]++;
    if (status === 'changed') this.changed.push(label);
  }

  /** The host changed (or may have): every read is taken again from the host. */
  forgetReads(): void {
    this.reads.clear();
    this.prefetched.clear();
  }

  /** Its part of a play is done: the recap's time runs from its first start to its last end. */
  finish(): void {
    this.endedAt = Date.now();
  }

  recap(counters?: Counters): HostRecap {
    return {
      host: this.name,
      ...this.counts,
      unreachable: this.down === 'unreachable',
      error: this.error,
      durationMs: (this.endedAt ?? Date.now()) - this.startedAt,
      counters,
    };
  }
}

export interface ConnectOptions {
  transports: TransportSource;
  reporter: Reporter;
  /** Take the per-host run lock right after connecting (apply, run, exec; not check). */
  lock?: { meta: LockMeta; waitMs: number };
  /** Facts for the tasks (runs); exec needs none. */
  gatherFacts?(run: Transport['run']): Promise<Facts>;
  /** Read the handlers an earlier run left pending (runs with tasks). */
  pendingHandlers?: boolean;
}

/**
 * Connects (once), locks, gathers facts and reads the pending handlers. A connection failure
 * makes the host unreachable; anything else (lock held, become or host key refused, facts
 * unreadable) is a refusal.
 *
 * The lock and the reads go out back to back, one round trip: the session shell runs its
 * commands in the order sent, so the reads see the host as it is once the lock is held, and
 * when the lock is refused their results are dropped (they only read).
 */
export async function connectHost(h: HostRun, o: ConnectOptions): Promise<boolean> {
  if (h.connected) return true;
  if (h.down) return false;
  o.reporter.emit({ type: 'host.connecting', host: h.name });
  const t0 = Date.now();
  try {
    const t = (h.transport = o.transports.get(h.name));
    await t.connect();
    const run: Transport['run'] = (cmd, opts) => t.run(cmd, opts);
    // The facts and the pending handlers are read by one command (after the lock's).
    const firstReads = joinFirstReads(run);
    const [locked, facts, pending] = await Promise.allSettled([
      o.lock && t.lock(o.lock.meta, o.lock.waitMs),
      o.gatherFacts?.(firstReads),
      o.pendingHandlers ? PendingHandlers.load(run, firstReads) : undefined,
    ]);
    for (const r of [locked, facts, pending]) if (r.status === 'rejected') throw r.reason;
    if (facts.status === 'fulfilled' && facts.value) h.facts = facts.value;
    if (pending.status === 'fulfilled' && pending.value) h.pending = pending.value;
    h.connected = true;
    o.reporter.emit({ type: 'host.connected', host: h.name, ms: Date.now() - t0 });
    return true;
  } catch (e) {
    if (e instanceof HostUnreachable) h.lose(messageOf(e));
    else h.refuse(messageOf(e));
    return false;
  }
}

/** The hosts of a run that started, in start order: filled by the executor or exec, read by the session. */
export class HostRuns {
  #runs = new Map<string, HostRun>();

  constructor(private readonly reporter: Reporter) {}

  /** The host's run, made on first use. */
  get(name: string): HostRun {
    let h = this.#runs.get(name);
    if (!h) this.#runs.set(name, (h = new HostRun(name, this.reporter)));
    return h;
  }

  find(name: string): HostRun | undefined {
    return this.#runs.get(name);
  }

  recap(counters: Record<string, Counters>): HostRecap[] {
    return [...this.#runs.values()].map((h) => h.recap(counters[h.name]));
  }

  /** Host → labels of the tasks that changed, for hosts where some did. */
  changedTasks(): Record<string, string[]> {
    return Object.fromEntries([...this.#runs.values()].filter((h) => h.changed.length > 0).map((h) => [h.name, h.changed]));
  }
}
