/**
 * The module contract (ARCHITECTURE "The contracts"): read → decide → act, kept apart.
 * check() is read-only and returns what would change; apply() makes it so. The engine owns
 * check mode: with --check it never calls apply(). `changed` is computed from check().changes.
 */
import type { z } from 'zod';
import type { RunOptions, RunResult, PutOptions } from '../transport/types.js';
import type { Facts } from '../facts/types.js';
import type { Inventory } from '../inventory/types.js';

/** One thing that will change, for people: "mode 0644 → 0600", "install nginx 1.22.1-9". */
export interface Change {
  what: string;
  from?: string;
  to?: string;
}

export type Diff =
  | { kind: 'file'; path: string; before: string | null; after: string | null; sensitive?: boolean }
  | { kind: 'package'; name: string; before: string | null; after: string | null }
  | { kind: 'service'; name: string; before: string; after: string }
  | { kind: 'value'; name: string; before: string | null; after: string | null; sensitive?: boolean };

/** What every check result may carry besides its changes. */
interface CheckCommon {
  diff?: Diff[];
  /** Observed state digest input for plan files; defaults to changes+diff. */
  observed?: unknown;
  /** This task acts on every run by design (a restart handler, an unguarded command). */
  always?: boolean;
  /** Nothing was done on purpose (it cannot run here); reported as "skipped" with the reason. */
  skipped?: boolean;
  /** Something people must see whatever the outcome (the inventory disagrees with the cluster). */
  warning?: string;
}

/** Private data check() hands to apply() (e.g. the rendered content): required when D is. Never printed. */
type CheckData<D> = undefined extends D ? { data?: D } : { data: D };

/** Something will change: the only kind of check apply() receives. */
export type Changes<D = unknown> = CheckCommon & {
  changes: [Change, ...Change[]];
  reason?: string;
} & CheckData<D>;

/** Nothing changes, and the result says why ("already present at 1.2.3"): `reason` is required. */
export type NoChange = CheckCommon & {
  changes: [];
  reason: string;
  data?: undefined;
};

/**
 * The result of check(). `changed` is computed from `changes`, never set. The type makes a
 * no-change result without a reason, or a change without the module's data, a compile error.
 */
export type Check<D = unknown> = Changes<D> | NoChange;

/** Narrows a check to one with changes (what apply() takes). */
export function hasChanges<D>(c: Check<D>): c is Changes<D> {
  return c.changes.length > 0;
}

/** Narrows a built-up list of changes to a non-empty one: `if (!nonEmpty(changes)) return unchanged(...)`. */
export function nonEmpty<T>(list: T[]): list is [T, ...T[]] {
  return list.length > 0;
}

/** A view of another host, for cross-host data (replica → primary, haproxy → api servers). */
export interface HostView {
  name: string;
  address: string;
  groups: string[];
  vars: Record<string, unknown>;
  facts?: Facts;
}

/** What a module sees of the host it runs on. */
export interface HostContext {
  readonly name: string;
  readonly address: string;
  readonly groups: string[];
  /** Merged variables for this host (and the current role's defaults). */
  readonly vars: Record<string, unknown>;
  readonly facts: Facts;
  /** True in --check / plan: modules must not change anything (the engine enforces it too). */
  readonly checkMode: boolean;
  run(cmd: string, opts?: RunOptions): Promise<RunResult>;
  put(path: string, bytes: string | Buffer, opts?: PutOptions): Promise<void>;
  /**
   * Removes a file, symlink or directory tree through its pinned parent directory (a missing
   * path is fine). Like put(), what it removes is kept for `infra rollback` when the run keeps files.
   */
  remove(path: string): Promise<void>;
  get(path: string): Promise<Buffer | null>;
  /**
   * Renders a template of the current role (templates/<src>) or a shared partial with the
   * standard data (vars, host, facts, groups); `vars` are merged over the host's vars.
   */
  render(src: string, extra?: { vars?: Record<string, unknown> }): Promise<string>;
  /** Reads a file of the current role (files/<src>), confined to the role. */
  roleFile(src: string): Promise<Buffer>;
  /** Other hosts of the inventory matching a limit pattern. */
  hosts(pattern: string): HostView[];
  /** The inventory this host is part of (files beside it: its CA under pki/). */
  readonly inventory?: Inventory;
  /**
   * A read-only command on another inventory host, through that host's own session (opened
   * when needed, without the run lock): live cluster state (src/cluster/live.ts), never changes.
   */
  peerRun?(host: string, cmd: string, opts?: RunOptions): Promise<RunResult>;
  /**
   * The same task's context on another inventory host, for a step that acts there: draining
   * this host from the load balancers before a deploy. That host joins the run like any
   * other (connected, locked, facts gathered, in the recap). Absent outside the engine.
   */
  onHost?(host: string): Promise<HostContext>;
  /** Opens a new connection through the same route as this session, runs `true`, closes it. */
  probeConnection(): Promise<ProbeResult>;
  /**
   * A read of this host's state shared by the run's tasks: the first call runs `read`, later
   * ones with the same key get its result until a task changes something on the host (the
   * engine forgets every cached read after each apply). Absent: no cache, every read runs.
   */
  cached?<T>(key: string, read: () => Promise<T>): Promise<T>;
}

/** host.cached when the context has it, else the read itself. */
export function cachedRead<T>(host: HostContext, key: string, read: () => Promise<T>): Promise<T> {
  return host.cached ? host.cached(key, read) : read();
}

/** Whether a fresh connection to the host works now, and how long it took. */
export interface ProbeResult {
  ok: boolean;
  ms: number;
  error?: string;
}

/** P: the parsed params; D: the data check() passes to apply(). */
export interface Module<P, D = unknown> {
  name: `${string}.${string}`;
  params: z.ZodType<P, z.ZodTypeDef, unknown>;
  /** Short label for output, e.g. the path or package names. */
  describe(p: P): string;
  check(host: HostContext, p: P): Promise<Check<D>>;
  /** Called only with a check that has changes (the engine narrows with hasChanges). */
  apply(host: HostContext, p: P, c: Changes<D>): Promise<void>;
  /**
   * Opt-in to batched reads (engine/batched-reads.ts), true for these params: check()'s first host.run() is a pure read
   * whose command text depends only on the params and local data (vars, facts, templates, role
   * files), not on another command's output. The engine then gathers that read for all of a
   * host's tasks in one round trip and hands check() its result, until the host changes.
   */
  batchReads?(p: P): boolean;
}

/** Options every task accepts next to its module's params. */
export interface TaskOptions {
  /** Display name; defaults to "<module> <describe()>". */
  name?: string;
  /** Handler name(s) to notify when this task changed something. */
  notify?: string | string[];
  tags?: string[];
  /** Keep going on this host if the task fails (the failure is still reported). */
  ignoreErrors?: boolean;
}

/**
 * A module with its data type erased: tasks and registries hold modules of every kind, and
 * the engine only hands a check() result back to the same module's apply().
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type SomeModule<P> = Module<P, any>;

export interface Task<P = unknown> {
  module: SomeModule<P>;
  params: unknown; // validated by the engine against module.params before any connection
  name?: string;
  notify: string[];
  tags: string[];
  ignoreErrors: boolean;
  /** Where the task was declared (YAML file:line or role name) for error messages. */
  origin?: { file: string; line?: number; col?: number };
}

/** I: what a caller may write (zod input: defaulted keys optional); P: the parsed params. */
export type TaskFactory<P, I = P> = ((params: I & TaskOptions) => Task<P>) & { module: SomeModule<P> };

const TASK_KEYS = ['name', 'notify', 'tags', 'ignoreErrors'] as const;

/**
 * Splits task options from module params. A key the module's params declare stays a param
 * (`systemd.service({ name: 'nginx' })`: `name` is the unit, not the task's display name).
 */
export function splitTaskOptions(
  input: Record<string, unknown>,
  paramKeys: ReadonlySet<string> = new Set(),
): { params: Record<string, unknown>; opts: TaskOptions } {
  const params: Record<string, unknown> = {};
  const opts: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input ?? {})) {
    if ((TASK_KEYS as readonly string[]).includes(k) && !paramKeys.has(k)) opts[k] = v;
    else params[k] = v;
  }
  return { params, opts: opts as TaskOptions };
}

export function makeTask<P>(module: SomeModule<P>, params: unknown, opts: TaskOptions = {}): Task<P> {
  const notify = opts.notify === undefined ? [] : Array.isArray(opts.notify) ? opts.notify : [opts.notify];
  return { module, params, name: opts.name, notify, tags: opts.tags ?? [], ignoreErrors: opts.ignoreErrors ?? false };
}

/** Defines a module and returns its task factory: `files.template({...})` → Task. */
export function defineModule<P, I = P, D = unknown>(module: Module<P, D>): TaskFactory<P, I> {
  const keys = paramKeysOf(module.params);
  const factory = ((input: I & TaskOptions) => {
    const { params, opts } = splitTaskOptions(input as Record<string, unknown>, keys);
    return makeTask(module, params, opts);
  }) as TaskFactory<P, I>;
  factory.module = module;
  return factory;
}

/** Top-level keys of a params schema (through refine/transform/default wrappers). */
export function paramKeysOf(schema: unknown): ReadonlySet<string> {
  let s = schema as { _def?: { schema?: unknown; innerType?: unknown }; shape?: Record<string, unknown> } | undefined;
  for (let i = 0; i < 10 && s; i++) {
    if (s.shape && typeof s.shape === 'object') return new Set(Object.keys(s.shape));
    s = (s._def?.schema ?? s._def?.innerType) as typeof s;
  }
  return new Set();
}

/** A no-change result, with its reason. */
export function unchanged(reason: string, extra: CheckCommon = {}): NoChange {
  return { ...extra, changes: [], reason };
}
