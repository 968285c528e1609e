/**
 * connectHost: the run lock, the facts and the pending handlers go to the host in ONE round
 * trip (sent back to back, lock first: the session shell runs them in that order; the two
 * reads as one command), and a refused lock refuses the host whatever the reads returned.
 */
import { describe, expect, it } from 'vitest';
import { connectHost, HostRun, type TransportSource } from '../../../src/engine/host-run.js';
import { gatherFacts } from '../../../src/facts/index.js';
import { emptyCounters, HostLocked, type LockMeta, type RunResult, type Transport } from '../../../src/transport/types.js';
import type { RunEvent } from '../../../src/report/events.js';

/** A host whose replies all come back only when release() is called: what was sent before that is one round trip. */
function slowHost(lockHeld: boolean) {
  const sent: string[] = [];
  const waiting: (() => void)[] = [];
  const reply = <T>(v: () => T): Promise<T> => new Promise((res, rej) => waiting.push(() => { try { res(v()); } catch (e) { rej(e); } }));
  const ok = (stdout: string): RunResult => ({ code: 0, stdout, stderr: '', stdoutBytes: Buffer.from(stdout) });
  const t: Transport = {
    host: 'web1',
    counters: emptyCounters(),
    connect: async () => {},
    lock: (_m: LockMeta) => {
      sent.push('lock');
      return reply(() => {
        if (lockHeld) throw new HostLocked('web1', { user: 'ana' });
      });
    },
    run: (cmd: string) => {
      const what = [cmd.includes('@@infra-fact-') && 'facts', cmd.includes('pending-handlers') && 'pending'].filter(Boolean).join('+');
      sent.push(what || cmd);
      // A joined read (batchScript): each part answers empty, exit 0, after its marker.
      const marker = /@@infra-read-[0-9a-f]+@@/.exec(cmd)?.[0];
      const parts = marker ? cmd.split(marker).length - 1 : 0;
      const stderr = marker ? `\n${marker}\n`.repeat(parts / 2) : '';
      return reply(() => ({ ...ok(marker ? `\n${marker} 0\n`.repeat(parts / 2) : ''), stderr }));
    },
    put: async () => {},
    remove: async () => {},
    get: async () => null,
    close: async () => {},
    abort: async () => {},
  };
  const transports: TransportSource = { get: () => t, open: () => t, counters: () => ({}) };
  return { sent, transports, release: () => waiting.splice(0).forEach((f) => f()) };
}

const reporter = { emit: (_e: RunEvent) => {} };
const lock = { meta: { runId: 'r', user: 'u', controller: 'c', pid: 1, since: '', command: 'infra apply' } as unknown as LockMeta, waitMs: 0 };

describe('connectHost', () => {
  it('sends the lock, then the facts and the pending handlers as one command, before any reply: one round trip', async () => {
    const host = slowHost(false);
    const h = new HostRun('web1', reporter as never);
    const done = connectHost(h, { transports: host.transports, reporter: reporter as never, lock, gatherFacts: (run) => gatherFacts((c) => run(c)), pendingHandlers: true });
    await new Promise((r) => setTimeout(r, 10));
    expect(host.sent).toEqual(['lock', 'facts+pending']);
    host.release();
    expect(await done).toBe(true);
    expect(h.facts).toBeDefined();
    expect(h.pending).toBeDefined();
  });

  it('a lock held by another run refuses the host (the reads sent beside it are dropped)', async () => {
    const host = slowHost(true);
    const h = new HostRun('web1', reporter as never);
    const done = connectHost(h, { transports: host.transports, reporter: reporter as never, lock, gatherFacts: (run) => gatherFacts((c) => run(c)), pendingHandlers: true });
    await new Promise((r) => setTimeout(r, 10));
    host.release();
    expect(await done).toBe(false);
    expect(h.down).toBe('failed');
    expect(h.error).toMatch(/locked by ana/);
    expect(h.facts).toBeUndefined();
  });
});
