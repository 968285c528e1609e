/**
 * Controller side of the session protocol (see session-script.ts). Drives any channel with
 * stdin/stdout/stderr: an ssh2 exec channel or a local child process. Requests are
 * pipelined (the shell answers in order); a dead channel rejects everything pending.
 */
import type { Readable, Writable } from 'node:stream';
import { registerSecretValue } from '../secrets/secret.js';
import type { Counters, RunOptions, RunResult } from './types.js';
import { HostRefused, HostUnreachable, MAX_COMMAND_TIMEOUT_MS, MIN_COMMAND_TIMEOUT_MS, SessionFileError } from './types.js';
import { NOT_RUN, READY_MARKER, SUDO_PROMPT, type NotRunReason } from './session-script.js';

export interface SessionChannel {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Called once when the channel ends (exit, close, or error). */
  onClose(cb: (cause?: unknown) => void): void;
  /** Tears the channel down (idempotent, never throws). */
  destroy(): void;
}

export interface SessionStartOptions {
  host: string;
  counters: Counters;
  /** sudo password, sent when (and only when) sudo prompts for it. */
  becomePassword?: string;
  /** How long the shell may take to print its ready marker (default 10 s). */
  readyTimeoutMs?: number;
}

export type FrameKind = 'c' | 'l';

export const DEFAULT_COMMAND_TIMEOUT_MS = 10 * 60_000;
/** The loop's KILL 5 s after TERM on timeout, plus slack for a slow link, before we declare the session lost. */
export const CONTROLLER_GRACE_MS = 20_000;
/** Output kept per stream and command unless the caller asks otherwise (the tail is kept). */
export const DEFAULT_MAX_OUTPUT_BYTES = 8 * 1024 * 1024;
/** The most a caller may keep per stream: a larger string cannot be made in Node (~512 MiB). */
export const MAX_OUTPUT_BYTES = 256 * 1024 * 1024;
interface Pending {
  id: number;
  resolve(r: RunResult): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout;
  maxOutputBytes: number;
}

type ParseState =
  | { at: 'header' }
  | { at: 'body'; p: Pending; code: number; outLeft: number; errLeft: number; out: TailKeeper; err: TailKeeper };

export class Session {
  readonly uid: number;
  #ch: SessionChannel;
  #host: string;
  #counters: Counters;
  #nextId = 1;
  #pending: Pending[] = [];
  #buf = new ChunkBuffer();
  #state: ParseState = { at: 'header' };
  #dead: unknown = undefined;
  #closing = false;
  /** Last bytes the shell wrote to its own stderr (sudo / sh errors), for messages. */
  #shellStderr = '';

  private constructor(ch: SessionChannel, opts: SessionStartOptions, uid: number, leftover: Buffer) {
    this.#ch = ch;
    this.#host = opts.host;
    this.#counters = opts.counters;
    this.uid = uid;
    ch.stdout.on('data', (d: Buffer) => {
      this.#counters.bytesReceived += d.length;
      this.#buf.push(d);
      this.#parse();
    });
    ch.stderr.on('data', (d: Buffer) => {
      this.#counters.bytesReceived += d.length;
      this.#shellStderr = (this.#shellStderr + d.toString('utf8')).slice(-2000);
    });
    ch.onClose((cause) => {
      this.#fail(
        this.#closing
          ? new HostUnreachable(this.#host, 'session closed')
          : new HostUnreachable(this.#host, 'connection lost: state unknown', { cause }),
      );
    });
    if (leftover.length) {
      this.#buf.push(leftover);
      this.#parse();
    }
  }

  /**
   * Waits for the ready marker. Answers sudo's password prompt once; a second prompt means
   * the password was wrong. A channel that ends first (sudo -n refused, no sh) is a
   * HostRefused with the shell's stderr.
   */
  static start(ch: SessionChannel, opts: SessionStartOptions): Promise<Session> {
    const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
    return new Promise<Session>((resolve, reject) => {
      let out = Buffer.alloc(0);
      let err = '';
      let prompts = 0;
      let settled = false;
      const finish = (e: unknown, s?: Session): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ch.stdout.off('data', onOut);
        ch.stderr.off('data', onErr);
        if (s) resolve(s);
        else {
          ch.destroy();
          reject(e);
        }
      };
      const timer = setTimeout(() => {
        finish(
          err.trim()
            ? new HostRefused(opts.host, `session shell not ready after ${readyTimeoutMs} ms: ${clean(err)}`)
            : new HostUnreachable(opts.host, `session shell not ready after ${readyTimeoutMs} ms`),
        );
      }, readyTimeoutMs);
      const onOut = (d: Buffer): void => {
        opts.counters.bytesReceived += d.length;
        out = Buffer.concat([out, d]);
        const at = out.indexOf(READY_MARKER + ' ');
        if (at < 0) return;
        const eol = out.indexOf(0x0a, at);
        if (eol < 0) return;
        const uid = Number(out.subarray(at + READY_MARKER.length + 1, eol).toString());
        const session = new Session(ch, opts, uid, out.subarray(eol + 1));
        finish(undefined, session);
      };
      const onErr = (d: Buffer): void => {
        opts.counters.bytesReceived += d.length;
        err += d.toString('utf8');
        while (err.includes(SUDO_PROMPT)) {
          err = err.replace(SUDO_PROMPT, '');
          prompts++;
          if (prompts > 1 || opts.becomePassword === undefined) {
            finish(new HostRefused(opts.host, 'sudo rejected the become password', 'check becomePassword in the vault'));
            return;
          }
          registerSecretValue(opts.becomePassword);
          write(ch.stdin, Buffer.from(opts.becomePassword + '\n'), opts.counters);
        }
      };
      ch.stdout.on('data', onOut);
      ch.stderr.on('data', onErr);
      ch.onClose((cause) => {
        const why = clean(err) || (cause instanceof Error ? cause.message : 'channel closed');
        finish(
          cause && !err.trim()
            ? new HostUnreachable(opts.host, `session shell failed to start: ${why}`, { cause })
            : new HostRefused(opts.host, `session shell failed to start: ${why}`),
        );
      });
    });
  }

  get closed(): boolean {
    return this.#dead !== undefined;
  }

  /** Runs `cmd` in a child sh. Non-zero exit is a result; a dead session throws HostUnreachable. */
  run(cmd: string, opts: RunOptions = {}): Promise<RunResult> {
    return this.#send(cmd, opts, 'c');
  }

  /**
   * Takes the run lock for the rest of the session (see lock.ts): exit 0 taken, LOCK_HELD with
   * the holder's metadata on stdout, anything else a failure (stderr says what).
   */
  takeLock(waitMs: number, metaJson: string): Promise<RunResult> {
    return this.#send(String(Math.ceil(waitMs / 1000)), { stdin: metaJson, timeoutMs: waitMs + 30_000 }, 'l');
  }

  /** Ends the loop (EOF on stdin); the session exits and drops its descriptors, the lock included. */
  async close(): Promise<void> {
    if (this.#dead !== undefined) return;
    this.#closing = true;
    const gone = new Promise<void>((res) => this.#ch.onClose(() => res()));
    try {
      this.#ch.stdin.end();
    } catch {
      /* already gone */
    }
    const t = setTimeout(() => this.#ch.destroy(), 2000);
    await gone;
    clearTimeout(t);
  }

  /** Kills the channel now, and the command running on the host (pending commands fail as connection lost). */
  destroy(): void {
    this.#ch.destroy();
  }

  #send(cmd: string, opts: RunOptions, kind: FrameKind): Promise<RunResult> {
    if (this.#dead !== undefined) return Promise.reject(this.#dead);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    if (!(timeoutMs >= MIN_COMMAND_TIMEOUT_MS && timeoutMs <= MAX_COMMAND_TIMEOUT_MS)) {
      return Promise.reject(new RangeError(`command timeout ${timeoutMs} ms is out of range (1 ms to 24 h)`));
    }
    const maxOutputBytes = Math.min(opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES, MAX_OUTPUT_BYTES);
    const id = this.#nextId++;
    const cmdBytes = Buffer.from(cmd, 'utf8');
    const stdin = opts.stdin === undefined ? Buffer.alloc(0) : Buffer.from(opts.stdin);
    const header = `${id} ${cmdBytes.length} ${stdin.length} ${(timeoutMs / 1000).toFixed(3)} ${kind}\n`;
    this.#counters.commands++;
    return new Promise<RunResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The shell did not answer even after its own timeout: it is wedged or the link is.
        this.#fail(new HostUnreachable(this.#host, `no answer to a command after ${timeoutMs} ms: state unknown`));
        this.#ch.destroy();
      }, timeoutMs + CONTROLLER_GRACE_MS);
      this.#pending.push({ id, resolve, reject, timer, maxOutputBytes });
      write(this.#ch.stdin, Buffer.concat([Buffer.from(header), cmdBytes, stdin]), this.#counters);
    });
  }

  /** Consumes whatever arrived: headers, then bodies as they stream (only each stream's tail is kept). */
  #parse(): void {
    for (;;) {
      const s = this.#state;
      if (s.at === 'header') {
        const lines = this.#buf.takeLines(3);
        if (!lines) return;
        const [idStatus, outLen, errLen] = lines;
        const [idText, status] = idStatus.split(' ');
        const id = Number(idText);
        const notRun = status?.startsWith('!') ? (status.slice(1) as NotRunReason) : undefined;
        const code = notRun ? -1 : Number(status);
        const o = Number(outLen);
        const e = Number(errLen);
        if (![id, code, o, e].every(Number.isInteger) || o < 0 || e < 0 || (notRun && !Object.hasOwn(NOT_RUN, notRun))) {
          this.#protocolError(`bad response header ${JSON.stringify(lines.join('|').slice(0, 100))}`);
          return;
        }
        const p = this.#pending[0];
        if (!p || p.id !== id) {
          this.#protocolError(`response ${id} does not match request ${p?.id}`);
          return;
        }
        if (notRun) {
          this.#pending.shift();
          clearTimeout(p.timer);
          p.reject(new SessionFileError(this.#host, NOT_RUN[notRun]));
          continue;
        }
        const cap = p.maxOutputBytes;
        this.#state = { at: 'body', p, code, outLeft: o, errLeft: e, out: new TailKeeper(cap), err: new TailKeeper(cap) };
      } else {
        if (s.outLeft > 0 || s.errLeft > 0) {
          const toOut = s.outLeft > 0;
          const chunk = this.#buf.takeUpTo(toOut ? s.outLeft : s.errLeft);
          if (!chunk) return;
          if (toOut) {
            s.out.push(chunk);
            s.outLeft -= chunk.length;
          } else {
            s.err.push(chunk);
            s.errLeft -= chunk.length;
          }
          continue;
        }
        this.#state = { at: 'header' };
        this.#pending.shift();
        clearTimeout(s.p.timer);
        s.p.resolve(runResult(s.code, s.out, s.err));
      }
    }
  }

  #protocolError(msg: string): void {
    const extra = this.#shellStderr.trim() ? ` (shell stderr: ${clean(this.#shellStderr)})` : '';
    this.#fail(new HostUnreachable(this.#host, `session protocol error: ${msg}${extra}`));
    this.#ch.destroy();
  }

  #fail(e: unknown): void {
    if (this.#dead === undefined) this.#dead = e;
    const pending = this.#pending.splice(0);
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(this.#dead);
    }
  }
}

function write(stream: Writable, data: Buffer, counters: Counters): void {
  counters.bytesSent += data.length;
  try {
    stream.write(data);
  } catch {
    /* the close handler reports the loss */
  }
}

/** The result; a stream over its cap starts with a line saying how much was dropped (stdoutBytes: the raw tail). */
function runResult(code: number, out: TailKeeper, err: TailKeeper): RunResult {
  const stdoutBytes = out.bytes();
  const stderrBytes = err.bytes();
  const text = (t: TailKeeper, b: Buffer): string =>
    (t.dropped ? `[infra: ${t.dropped} bytes of output dropped, the last ${b.length} follow]\n` : '') + b.toString('utf8');
  const result: RunResult = { code, stdout: text(out, stdoutBytes), stderr: text(err, stderrBytes), stdoutBytes };
  if (out.dropped || err.dropped) result.dropped = { stdout: out.dropped, stderr: err.dropped };
  return result;
}

function clean(s: string): string {
  return s.replaceAll(SUDO_PROMPT, '').trim().split('\n').slice(-5).join(' / ');
}

/** Byte queue that concatenates only what a read needs (1 MB payloads arrive in many chunks). */
class ChunkBuffer {
  #chunks: Buffer[] = [];
  #length = 0;

  push(b: Buffer): void {
    this.#chunks.push(b);
    this.#length += b.length;
  }

  /** Up to n bytes of what has arrived (at least one), or undefined when nothing has. */
  takeUpTo(n: number): Buffer | undefined {
    const first = this.#chunks[0];
    if (!first) return undefined;
    const out = first.subarray(0, n);
    if (out.length === first.length) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(out.length);
    this.#length -= out.length;
    return out;
  }

  take(n: number): Buffer | undefined {
    if (this.#length < n) return undefined;
    const all = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length ? [rest] : [];
    this.#length = rest.length;
    return out;
  }

  /** The next `count` newline-terminated lines (without "\n"), or undefined if incomplete. */
  takeLines(count: number): string[] | undefined {
    const all = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks);
    this.#chunks = all.length ? [all] : [];
    let pos = 0;
    const lines: string[] = [];
    for (let i = 0; i < count; i++) {
      const eol = all.indexOf(0x0a, pos);
      if (eol < 0) return undefined;
      lines.push(all.subarray(pos, eol).toString('latin1'));
      pos = eol + 1;
    }
    this.take(pos);
    return lines;
  }
}

/** Keeps the last `cap` bytes of a stream and counts what it dropped: memory stays ~cap. */
class TailKeeper {
  #chunks: Buffer[] = [];
  #size = 0;
  dropped = 0;

  constructor(private readonly cap: number) {}

  push(b: Buffer): void {
    this.#chunks.push(b);
    this.#size += b.length;
    while (this.#chunks.length > 1 && this.#size - this.#chunks[0].length >= this.cap) {
      const gone = this.#chunks.shift()!;
      this.#size -= gone.length;
      this.dropped += gone.length;
    }
  }

  bytes(): Buffer {
    const all = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks);
    if (all.length <= this.cap) return all;
    this.dropped += all.length - this.cap;
    this.#chunks = [all.subarray(all.length - this.cap)];
    return this.#chunks[0];
  }
}
