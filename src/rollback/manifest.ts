/**
 * Reading a run's manifest (written by transport/keep.ts and rollback/keeper.ts): what the run
 * did on one host, and, per path, what was there before the run and what the run left there.
 * Pure: parsed from the manifest's text.
 */
import type { RunHeader, TaskRecord } from './keeper.js';

/** A path's state as the host's infra_state printed it (null: nothing there). */
export type PathState =
  | { kind: 'file'; sha256: string; mode: string; uid: number; gid: number; size: number }
  | { kind: 'link' | 'directory' | 'other' }
  | null;

/** One write or removal, as keep.ts recorded it. */
export interface FileRecord {
  t: 'file';
  task: number;
  path: string;
  sensitive?: boolean;
  validate?: string;
  before: PathState;
  after: PathState;
}

/** A path the run changed: its state before the run's first write, after its last. */
export interface KeptPath {
  path: string;
  before: PathState;
  after: PathState;
  /** The tasks that wrote it, in order. */
  tasks: number[];
  sensitive: boolean;
  validate?: string;
}

export interface Manifest {
  header: RunHeader;
  paths: KeptPath[];
  tasks: TaskRecord[];
}

export function parseManifest(text: string): Manifest {
  let header: RunHeader | undefined;
  const paths = new Map<string, KeptPath>();
  const tasks: TaskRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let o: { t?: unknown };
    try {
      o = JSON.parse(line) as { t?: unknown };
    } catch {
      continue; // a line cut by a full disk: the rest still tells what happened
    }
    if (o.t === 'run' && !header) header = o as RunHeader;
    else if (o.t === 'task') tasks.push(o as TaskRecord);
    else if (o.t === 'file') {
      const f = o as FileRecord;
      const seen = paths.get(f.path);
      if (!seen) {
        paths.set(f.path, { path: f.path, before: f.before, after: f.after, tasks: [f.task], sensitive: !!f.sensitive, validate: f.validate });
      } else {
        seen.after = f.after;
        seen.tasks.push(f.task);
        seen.sensitive ||= !!f.sensitive;
        seen.validate ??= f.validate;
      }
    }
  }
  if (!header) throw new Error('the manifest has no run line');
  return { header, paths: [...paths.values()], tasks };
}

/** Same content, kind, mode and owner: what "changed after the run" is measured by. */
export function sameState(a: PathState, b: PathState): boolean {
  if (a === null || b === null) return a === b;
  if (a.kind !== 'file' || b.kind !== 'file') return a.kind === b.kind;
  return a.sha256 === b.sha256 && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid;
}

/** A secret may be in it: flagged when written, or not readable by others (0600, 0640). */
export function isSensitive(k: KeptPath): boolean {
  const unreadable = (s: PathState) => s !== null && s.kind === 'file' && (parseInt(s.mode, 8) & 0o004) === 0;
  return k.sensitive || unreadable(k.before) || unreadable(k.after);
}

/** What to say about a state in one line: "sha256 1a2b3c4d5e6f, 0644 0:0" / "absent". */
export function describeState(s: PathState): string {
  if (s === null) return 'absent';
  if (s.kind !== 'file') return `a ${s.kind}`;
  return `sha256 ${s.sha256.slice(0, 12)}, ${s.mode.padStart(4, '0')} ${s.uid}:${s.gid}`;
}

/** Changed tasks that wrote no file (packages, services, users...): what a rollback reports and does not revert. */
export function notFileTasks(m: Manifest): TaskRecord[] {
  const wrote = new Set(m.paths.flatMap((p) => p.tasks));
  return m.tasks.filter((t) => !wrote.has(t.task));
}

/** The task records of the tasks that wrote a path (the last one's role owns the handlers). */
export function writersOf(m: Manifest, k: KeptPath): TaskRecord[] {
  return k.tasks.map((n) => m.tasks.find((t) => t.task === n)).filter((t): t is TaskRecord => !!t);
}
