/**
 * ShellTransport.warm(): a connection started while the run still loads its input. The next
 * connect() takes that attempt's outcome — its session, or its failure once (an unreachable
 * host is not tried twice) — and a transport closed before it is used opens nothing more.
 */
import { describe, expect, it } from 'vitest';
import { ShellTransport } from '../../../src/transport/shell-transport.js';
import { LocalTransport } from '../../../src/transport/local.js';
import { HostUnreachable } from '../../../src/transport/types.js';
import type { Session } from '../../../src/transport/session.js';

class Unreachable extends ShellTransport {
  attempts = 0;
  protected openSession(): Promise<Session> {
    this.attempts++;
    return new Promise((_res, rej) => setTimeout(() => rej(new HostUnreachable(this.host, 'no route to host')), 20));
  }
  protected async release(): Promise<void> {}
}

const local = () => new LocalTransport({ name: 'local', conn: { connection: 'local', address: 'localhost', port: 22, user: 'root', become: false } } as never);

describe('ShellTransport.warm', () => {
  it('connect() takes the warm attempt: one attempt, its failure reported then', async () => {
    const t = new Unreachable('web1');
    t.warm();
    t.warm();
    await new Promise((r) => setTimeout(r, 50)); // failed meanwhile: nothing thrown, nothing unhandled
    await expect(t.connect()).rejects.toThrow(/no route to host/);
    expect(t.attempts).toBe(1);
  });

  it('connect() after warm() uses the session it opened', async () => {
    const t = local();
    try {
      t.warm();
      await t.connect();
      expect((await t.run('echo $$')).code).toBe(0);
      expect(t.counters.commands).toBe(1);
    } finally {
      await t.close();
    }
  });
});
