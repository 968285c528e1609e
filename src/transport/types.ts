/**
 * Transport contract. One implementation per connection kind (ssh, local). All of them speak
 * to ONE long-lived shell per host through the session protocol (session.ts): no channel per
 * command. Failures to reach a host are thrown as HostUnreachable; a command's non-zero exit
 * is a normal result.
 */
import type { KeepOptions } from './keep.js';

/**
 * The range of a command's timeout. There is no "no limit": a wedged command must end, and the
 * controller's own timer (timeout + grace) must stay below Node's 2^31-1 ms timer limit.
 */
export const MIN_COMMAND_TIMEOUT_MS = 1;
export const MAX_COMMAND_TIMEOUT_MS = 24 * 3_600_000;

export interface RunOptions {
  /** Bytes fed to the command's stdin (secrets travel here, never in argv). */
  stdin?: string | Buffer;
  /** Per-command timeout in ms (default 10 min, 1 ms to 24 h). On timeout the command is killed, code 124. */
  timeoutMs?: number;
  /**
   * Output kept per stream (default 8 MiB): beyond it the controller keeps the tail and
   * `dropped` says how much went. Readers of data (get, probes) raise it and fail on a drop.
   */
  maxOutputBytes?: number;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Raw stdout for binary payloads (get()). */
  stdoutBytes: Buffer;
  /** Bytes dropped from the head of each stream (output over maxOutputBytes); absent when none. */
  dropped?: { stdout: number; stderr: number };
}

export interface PutOptions {
  /** Octal string, e.g. "0644". */
  mode?: string;
  owner?: string;
  group?: string;
  /** Command with %s for the temp file, e.g. "sshd -t -f %s". Non-zero exit = old file kept. */
  validate?: string;
  /** The content holds a secret: a rollback never shows it (recorded with the kept file). */
  sensitive?: boolean;
  /** Keep the file this write replaces, for rollback (keep.ts); set by the engine, not by modules. */
  keep?: KeepOptions;
}

export interface LockMeta {
  user: string;
  controller: string;
  runId: string;
  command: string;
  since: string; // ISO timestamp
}

export interface Counters {
  connections: number;
  channels: number;
  commands: number;
  bytesSent: number;
  bytesReceived: number;
  connectMs: number;
}

export interface Transport {
  readonly host: string;
  readonly counters: Counters;
  /** Opens the connection and the session shell (with become if configured). Idempotent. */
  connect(): Promise<void>;
  run(cmd: string, opts?: RunOptions): Promise<RunResult>;
  /**
   * Atomic write: temp file (0600, held open) in the destination dir → owner/mode → validate →
   * rename. Refuses a directory someone other than root and the owner can write (files.ts).
   */
  put(path: string, bytes: string | Buffer, opts?: PutOptions): Promise<void>;
  /** Removes a file, link or directory tree through its pinned parent; what goes is kept when `keep` says so. */
  remove(path: string, keep?: KeepOptions): Promise<void>;
  /** File contents, or null when the file does not exist. */
  get(path: string): Promise<Buffer | null>;
  /**
   * Exclusive per-host run lock held by the session shell (flock on /run/infra/lock) until
   * close() or until the session dies. Throws HostLocked with the holder's metadata.
   */
  lock(meta: LockMeta, waitMs?: number): Promise<void>;
  close(): Promise<void>;
  /**
   * Kills what runs on the host now (the running command's process group included) and drops
   * the session, and with it the run lock. Never throws.
   */
  abort(): Promise<void>;
}

/** The host could not be reached, or the connection died: state unknown. */
export class HostUnreachable extends Error {
  constructor(readonly host: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HostUnreachable';
  }
}

/** Authentication / become / host-key failures: the host is failed with a clear message. */
export class HostRefused extends Error {
  constructor(readonly host: string, message: string, readonly hint?: string) {
    super(message);
    this.name = 'HostRefused';
  }
}

/**
 * The session shell could not store a command, its input or its output files (its temp dir is
 * full or was removed): the command was NOT run. The host is still reachable.
 */
export class SessionFileError extends Error {
  constructor(readonly host: string, what: string) {
    super(`${host}: the session shell could not ${what} in its temp dir (TMPDIR, default /tmp: full or removed?); the command was NOT run`);
    this.name = 'SessionFileError';
  }
}

export class HostLocked extends Error {
  constructor(readonly host: string, readonly holder: Partial<LockMeta>) {
    super(
      `${host} is locked by ${holder.user ?? '?'}@${holder.controller ?? '?'} since ${
        holder.since ? new Date(holder.since).toTimeString().slice(0, 8) : '?'
      } (run ${holder.runId ?? '?'}, ${holder.command ?? '?'})`,
    );
    this.name = 'HostLocked';
  }
}

export function emptyCounters(): Counters {
  return { connections: 0, channels: 0, commands: 0, bytesSent: 0, bytesReceived: 0, connectMs: 0 };
}
