/** A local child process as a SessionChannel (connection: local, and the protocol unit tests). */
import { spawn } from 'node:child_process';
import type { SessionChannel } from './session.js';

export function spawnChannel(argv: string[]): SessionChannel {
  // detached: a terminal's Ctrl-C reaches the controller only, which decides what to stop.
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const closeCbs: ((cause?: unknown) => void)[] = [];
  let closed: { cause?: unknown } | undefined;
  const done = (cause?: unknown): void => {
    if (closed) return;
    closed = { cause };
    for (const cb of closeCbs.splice(0)) cb(cause);
  };
  // Every stream gets an error handler: EPIPE on a dead child must never crash the process.
  child.on('error', (e) => done(e));
  child.stdin.on('error', () => {});
  child.stdout.on('error', () => {});
  child.stderr.on('error', () => {});
  child.on('close', (code, signal) => done(code === 0 ? undefined : new Error(`exited ${code ?? signal}`)));
  return {
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    onClose(cb) {
      if (closed) queueMicrotask(() => cb(closed!.cause));
      else closeCbs.push(cb);
    },
    destroy() {
      if (closed || child.exitCode !== null) return;
      // TERM lets the session shell kill its running command's process group; KILL if it lingers.
      child.kill('SIGTERM');
      setTimeout(() => closed || child.kill('SIGKILL'), 2000).unref();
    },
  };
}
