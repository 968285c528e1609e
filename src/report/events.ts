/**
 * Run events: the engine emits these; reporters (tty, plain, json) render them.
 * Every string in an event passes through secrets/redact before any reporter prints it.
 */
import type { Change, Diff } from '../modules/types.js';
import type { Counters } from '../transport/types.js';

export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped';

export interface HostRecap {
  host: string;
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  unreachable: boolean;
  /** Why it was unreachable / refused / locked / drifted, when it was. */
  error?: string;
  durationMs: number;
  counters?: Counters;
}

export type RunEvent =
  | { type: 'run.start'; runId: string; command: string; mode: 'apply' | 'check' | 'run' | 'patch' | 'exec' | 'drill' | 'rollback'; inventory: string; hosts: string[]; /** --shard K/N */ shard?: string; at: string }
  | { type: 'play.start'; play: string; hosts: string[] }
  | { type: 'host.connecting'; host: string }
  | { type: 'host.connected'; host: string; ms: number }
  | { type: 'host.unreachable'; host: string; error: string }
  | { type: 'host.failed'; host: string; error: string }
  | { type: 'task.start'; host: string; task: string; module: string }
  | {
      type: 'task.result';
      host: string;
      task: string;
      module: string;
      status: TaskStatus;
      changes: Change[];
      reason?: string;
      warning?: string;
      diff?: Diff[];
      error?: string;
      ms: number;
      handler?: boolean;
    }
  | { type: 'play.end'; play: string }
  | { type: 'exec.output'; host: string; code: number; stdout: string; stderr: string }
  | { type: 'run.end'; runId: string; recap: HostRecap[]; durationMs: number; interrupted: boolean; exitCode: number };

export interface Reporter {
  emit(e: RunEvent): void;
  /** Flushes and stops live rendering. */
  close(): Promise<void>;
}
