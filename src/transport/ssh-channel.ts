/** An ssh2 exec channel as a SessionChannel; it also ends when its whole connection does. */
import type { Client, ClientChannel } from 'ssh2';
import type { SessionChannel } from './session.js';

export function execChannel(client: Client, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    try {
      client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch)));
    } catch (e) {
      reject(e);
    }
  });
}

export function sshSessionChannel(client: Client, ch: ClientChannel): SessionChannel {
  const closeCbs: ((cause?: unknown) => void)[] = [];
  let closed: { cause?: unknown } | undefined;
  let lastError: unknown;
  const done = (cause?: unknown): void => {
    if (closed) return;
    closed = { cause };
    client.off('close', onClientClose);
    client.off('end', onClientClose);
    for (const cb of closeCbs.splice(0)) cb(cause);
  };
  const onClientClose = (): void => done(lastError ?? new Error('ssh connection closed'));
  // Any client error after the handshake (keepalive timeout, ECONNRESET, protocol) is fatal.
  // Do not wait for 'close': over a bastion, a dead target's channel may never close.
  client.on('error', (e) => {
    lastError = e;
    done(e);
  });
  client.on('close', onClientClose);
  // Over a bastion the forwarded stream may only end (the target's TCP closed) and never
  // close: that is a lost connection too.
  client.on('end', onClientClose);
  ch.on('error', (e: unknown) => (lastError = e));
  ch.stderr.on('error', () => {});
  ch.on('close', () => done(lastError));
  return {
    stdin: ch,
    stdout: ch,
    stderr: ch.stderr,
    onClose(cb) {
      if (closed) queueMicrotask(() => cb(closed!.cause));
      else closeCbs.push(cb);
    },
    destroy() {
      try {
        // Closing alone leaves the remote command running (no tty, no SIGHUP): signal it first.
        if (!closed) ch.signal('TERM');
        ch.destroy();
      } catch {
        /* gone */
      }
      // ssh2 may not emit 'close' for a channel on a dead connection: report it ourselves.
      setTimeout(() => done(lastError ?? new Error('channel destroyed')), 500).unref();
    },
  };
}
