/**
 * What a run keeps for `infra rollback`, from the engine's side: per host, the task being run
 * (its number names it in the manifest), which paths this run already replaced (only the first
 * replacement keeps the old file: that is what was there before the run), each changed task's
 * record (module, changes before → after, the handlers it notifies), and retention at the end.
 * The host-side shell is transport/keep.ts; put() and remove() are the only writers.
 */
import { hostname, userInfo } from 'node:os';
import type { Inventory } from '../inventory/types.js';
import type { Change } from '../modules/types.js';
import type { KeepOptions } from '../transport/keep.js';
import { appendScript, KEEP_FAILED, pruneScript } from '../transport/keep.js';
import type { PutOptions, Transport } from '../transport/types.js';
import { redact, redactDeep } from '../secrets/secret.js';
import { UserError } from '../errors.js';
import type { HostRuns } from '../engine/host-run.js';

/** Retention defaults when the inventory sets none (inventory vars infra_keep_runs / infra_keep_days). */
export const KEEP_RUNS_DEFAULT = 20;
export const KEEP_DAYS_DEFAULT = 30;

/** The first manifest line: the run. */
export interface RunHeader {
  t: 'run';
  run: string;
  at: string;
  user: string;
  controller: string;
  command: string;
  inventory: string;
  /** The run this one rolls back, for a rollback. */
  rollbackOf?: string;
}

/** A changed task, recorded after it ran. */
export interface TaskRecord {
  t: 'task';
  task: number;
  label: string;
  module: string;
  role?: string;
  /** The play it ran in: its handlers are resolved there, by name. */
  play?: string;
  /** Handlers it notifies (by name, within its role or play). */
  notify: string[];
  /** The command that made its files live, for modules that activate inline (confirm.files). */
  activate?: string;
  changes: Change[];
}

export class RunKeeper {
  readonly #hosts = new Map<string, HostKeeper>();
  readonly header: string;

  constructor(
    readonly runId: string,
    o: { command: string; inventory: string; rollbackOf?: string },
  ) {
    const h: RunHeader = {
      t: 'run',
      run: runId,
      at: new Date().toISOString(),
      user: userInfo().username,
      controller: hostname(),
      command: redact(o.command),
      inventory: o.inventory,
      ...(o.rollbackOf ? { rollbackOf: o.rollbackOf } : {}),
    };
    this.header = JSON.stringify(h);
  }

  host(name: string): HostKeeper {
    let k = this.#hosts.get(name);
    if (!k) this.#hosts.set(name, (k = new HostKeeper(this)));
    return k;
  }

  /** Whether this run wrote (or tried to write) to the host's kept runs: only then is retention applied there. */
  keptOn(name: string): boolean {
    return this.#hosts.get(name)?.wrote ?? false;
  }
}

export class HostKeeper {
  #task = 0;
  readonly #replaced = new Set<string>();
  /** Set before the first write to the run's area (a failed write may have made it). */
  wrote = false;

  constructor(private readonly run: RunKeeper) {}

  /** A task starts on the host (a new context): its number. */
  nextTask(): number {
    return ++this.#task;
  }

  /** The number of the task that runs (or ran last). */
  get current(): number {
    return this.#task;
  }

  /** put() through the transport, keeping what it replaces. */
  async put(t: Transport, task: number, path: string, bytes: string | Buffer, o: PutOptions = {}): Promise<void> {
    await t.put(path, bytes, { ...o, keep: this.#keep(task, path) });
    this.#replaced.add(path);
  }

  async remove(t: Transport, task: number, path: string): Promise<void> {
    await t.remove(path, this.#keep(task, path));
    this.#replaced.add(path);
  }

  #keep(task: number, path: string): KeepOptions {
    this.wrote = true;
    return { runId: this.run.runId, header: this.run.header, task, seen: this.#replaced.has(path) };
  }

  /** Appends a changed task's record to the host's manifest. */
  async recordTask(run: Transport['run'], r: Omit<TaskRecord, 't'>): Promise<void> {
    const line = JSON.stringify(redactDeep({ t: 'task', ...r }));
    this.wrote = true;
    const res = await run(appendScript(this.run.runId, this.run.header, line));
    if (res.code === KEEP_FAILED) throw new Error(`the run's manifest could not be written (disk full?): ${res.stderr.trim()}`);
    if (res.code !== 0) throw new Error(`recording the task failed (exit ${res.code}): ${res.stderr.trim()}`);
  }
}

export interface Retention {
  runs: number;
  days: number;
}

/** The host's retention from its inventory vars; a bad value is an input error, caught before connecting. */
export function retentionOf(inventory: Inventory, host: string): Retention {
  const spec = inventory.hosts.get(host)!;
  const get = (name: string, dflt: number): number => {
    const v = spec.vars[name];
    if (v === undefined) return dflt;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 1) return v;
    const src = spec.provenance.get(name)?.at(-1);
    throw new UserError(`${name} of ${host} must be a positive integer, got ${JSON.stringify(v)}`, {
      pos: src?.pos,
      hint: `${name === 'infra_keep_runs' ? 'how many runs' : 'how many days'} of replaced files each host keeps for \`infra rollback\``,
    });
  };
  return { runs: get('infra_keep_runs', KEEP_RUNS_DEFAULT), days: get('infra_keep_days', KEEP_DAYS_DEFAULT) };
}

/**
 * Prunes the kept runs beyond retention on every host this run kept something on (a run that
 * changed nothing adds no area, so it has nothing to prune for: a no-op run sends no command for
 * it); failures are warnings.
 */
export async function pruneKept(keep: RunKeeper, hosts: HostRuns, runOn: (host: string) => Transport['run'], retention: Map<string, Retention>): Promise<void> {
  const reached = [...retention.keys()].filter((h) => keep.keptOn(h) && hosts.find(h)?.connected && hosts.find(h)?.down !== 'unreachable');
  await Promise.all(
    reached.map(async (host) => {
      try {
        await prune(runOn(host), keep.runId, retention.get(host)!);
      } catch (e) {
        process.stderr.write(redact(`warning: ${host}: ${e instanceof Error ? e.message : String(e)}\n`));
      }
    }),
  );
}

/** Prunes the host's kept runs by its retention; returns what was pruned and the kB still kept. */
export async function prune(run: Transport['run'], current: string, r: Retention): Promise<{ pruned: string[]; keptKb: number }> {
  const res = await run(pruneScript(current, r.runs, r.days));
  if (res.code !== 0) throw new Error(`pruning kept runs failed (exit ${res.code}): ${res.stderr.trim()}`);
  const lines = res.stdout.trim().split('\n');
  return { pruned: lines.filter((l) => l.startsWith('pruned ')).map((l) => l.slice(7)), keptKb: Number(lines.at(-1)) || 0 };
}
