/**
 * The Transport methods every connection kind shares once it has a session shell:
 * run, put, remove, get, lock, counters, and "connect once, even when asked concurrently".
 */
import { getFile, putFile, removeFile } from './files.js';
import type { KeepOptions } from './keep.js';
import { LOCK_HELD, lockMetaJson, parseHolder } from './lock.js';
import type { Session } from './session.js';
import type { Counters, LockMeta, PutOptions, RunOptions, RunResult, Transport } from './types.js';
import { emptyCounters, HostLocked, HostUnreachable } from './types.js';

export abstract class ShellTransport implements Transport {
  readonly counters: Counters = emptyCounters();
  #session?: Session;
  #connecting?: Promise<Session>;
  /** A connection started ahead of need (warm()): the next connect() takes its outcome, failure included. */
  #warming?: Promise<unknown>;
  #closed = false;

  constructor(readonly host: string) {}

  /** Opens whatever the kind needs and returns a started session shell. */
  protected abstract openSession(): Promise<Session>;
  /** Releases what openSession() opened besides the session (ssh client); never throws. */
  protected abstract release(): Promise<void>;

  async connect(): Promise<void> {
    const warm = this.#warming;
    this.#warming = undefined;
    if (warm) await warm;
    await this.#live();
  }

  /**
   * Starts connecting now, for a connect() that comes later (the run still loads its input).
   * Nothing is sent but the session's start; a failure waits, unreported, for that connect()
   * (which rethrows it rather than trying a second time).
   */
  warm(): void {
    if (this.#warming || this.#connecting || this.#session || this.#closed) return;
    const attempt = this.#live();
    attempt.catch(() => {});
    this.#warming = attempt;
  }

  async run(cmd: string, opts?: RunOptions): Promise<RunResult> {
    return (await this.#live()).run(cmd, opts);
  }

  put(path: string, bytes: string | Buffer, opts?: PutOptions): Promise<void> {
    return putFile((c, o) => this.run(c, o), path, bytes, opts);
  }

  remove(path: string, keep?: KeepOptions): Promise<void> {
    return removeFile((c, o) => this.run(c, o), path, keep);
  }

  get(path: string): Promise<Buffer | null> {
    return getFile((c, o) => this.run(c, o), path);
  }

  async lock(meta: LockMeta, waitMs = 0): Promise<void> {
    const s = await this.#live();
    const r = await s.takeLock(waitMs, lockMetaJson(meta));
    if (r.code === 0) return;
    if (r.code === LOCK_HELD) throw new HostLocked(this.host, parseHolder(r.stdout));
    throw new Error(`${this.host}: taking the run lock failed (exit ${r.code}): ${r.stderr.trim()}`);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const s = this.#session ?? (await this.#connecting?.catch(() => undefined));
    this.#session = undefined;
    try {
      await s?.close();
    } catch {
      /* closing is best effort */
    }
    await this.release();
  }

  async abort(): Promise<void> {
    this.#closed = true;
    const s = this.#session ?? (await this.#connecting?.catch(() => undefined));
    this.#session = undefined;
    s?.destroy();
    await this.release();
  }

  async #live(): Promise<Session> {
    if (this.#closed) throw new HostUnreachable(this.host, 'transport closed');
    if (this.#session) {
      if (!this.#session.closed) return this.#session;
      // A lost session is not reopened behind the caller's back: state is unknown.
      throw new HostUnreachable(this.host, 'connection lost: state unknown');
    }
    this.#connecting ??= this.openSession().then(
      (s) => (this.#session = s),
      (e) => {
        this.#connecting = undefined;
        throw e;
      },
    );
    return this.#connecting;
  }
}
