/**
 * Controller side of the session protocol (see session-script.ts). Drives any channel with
 * stdin/stdout/stderr: an ssh2 exec channel or a local child process. Requests are
 * pipelined (the shell answers in order); a dead channel rejects everything pending.
 */
import type { Readable, Writable } from 'node:stream';
import { registerSecretValue } from '../secrets/secret.js';
import type { Counters, RunOptions, RunResult } from './types.js';
import { HostRefused, HostUnreachable } from './types.js';
import { READY_MARKER, SUDO_PROMPT } from './session-script.js';

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

export type FrameKind = 'c' | 'e';

export const DEFAULT_COMMAND_TIMEOUT_MS = 10 * 60_000;
/** timeout -k 5 in the script, plus slack for a slow link before we declare the shell lost. */
const CONTROLLER_GRACE_MS = 20_000;
/** Commands up to this size are sent as lines for the `read` builtin (no fork in the shell). */
const MAX_LINE_MODE_BYTES = 4096;

interface Pending {
  id: number;
  resolve(r: RunResult): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout;
}

type ParseState =
  | { at: 'ready' }
  | { at: 'header' }
  | { at: 'body'; id: number; code: number; outLen: number; errLen: number };

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

  /** Evaluates `cmd` in the session shell itself (its fds and state persist). */
  evalInShell(cmd: string, opts: RunOptions = {}): Promise<RunResult> {
    return this.#send(cmd, opts, 'e');
  }

  /** Ends the loop (EOF on stdin); the shell exits and drops its fds, the lock included. */
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
    const id = this.#nextId++;
    let cmdBytes = Buffer.from(cmd, 'utf8');
    const stdin = opts.stdin === undefined ? Buffer.alloc(0) : Buffer.from(opts.stdin);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const lines = cmd.length <= MAX_LINE_MODE_BYTES ? cmd.split('\n').length : 0;
    if (lines) cmdBytes = Buffer.from(cmd + '\n', 'utf8');
    const header = `${id} ${cmdBytes.length} ${stdin.length} ${(timeoutMs / 1000).toFixed(3)} ${kind} ${lines}\n`;
    this.#counters.commands++;
    return new Promise<RunResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The shell did not answer even after its own timeout: it is wedged or the link is.
        this.#fail(new HostUnreachable(this.#host, `no answer to a command after ${timeoutMs} ms: state unknown`));
        this.#ch.destroy();
      }, timeoutMs + CONTROLLER_GRACE_MS);
      this.#pending.push({ id, resolve, reject, timer });
      write(this.#ch.stdin, Buffer.concat([Buffer.from(header), cmdBytes, stdin]), this.#counters);
    });
  }

  #parse(): void {
    for (;;) {
      const s = this.#state;
      if (s.at === 'header') {
        const lines = this.#buf.takeLines(3);
        if (!lines) return;
        const [idCode, outLen, errLen] = lines;
        const [id, code] = idCode.split(' ').map(Number);
        const o = Number(outLen);
        const e = Number(errLen);
        if (![id, code, o, e].every(Number.isInteger)) {
          this.#protocolError(`bad response header ${JSON.stringify(lines.join('|').slice(0, 100))}`);
          return;
        }
        this.#state = { at: 'body', id, code, outLen: o, errLen: e };
      } else if (s.at === 'body') {
        const body = this.#buf.take(s.outLen + s.errLen);
        if (!body) return;
        this.#state = { at: 'header' };
        const p = this.#pending.shift();
        if (!p || p.id !== s.id) {
          this.#protocolError(`response ${s.id} does not match request ${p?.id}`);
          return;
        }
        clearTimeout(p.timer);
        const stdoutBytes = body.subarray(0, s.outLen);
        p.resolve({
          code: s.code,
          stdout: stdoutBytes.toString('utf8'),
          stderr: body.subarray(s.outLen).toString('utf8'),
          stdoutBytes,
        });
      } else return;
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
