/**
 * The run session's abort with a real session shell (connection: local, no network): the
 * command running on the host is killed with its process group, not left running.
 */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import type { Inventory } from '../../../src/inventory/types.js';
import { RunSession } from '../../../src/engine/session.js';
import { RunControl } from '../../../src/engine/control.js';

const inventory: Inventory = {
  env: 'local',
  dir: '/tmp',
  hosts: new Map([['here', { name: 'here', conn: { connection: 'local', address: 'localhost', port: 22, user: 'me', become: false }, groups: ['all'], vars: {}, provenance: new Map() }]]),
  groups: new Map([['all', { name: 'all', children: [], hosts: ['here'], vars: {} }]]),
  knownHostsPath: '/tmp/known_hosts',
};

/** Process lines whose command line contains `needle`. */
const running = (needle: string): string => {
  try {
    return execFileSync('pgrep', ['-af', needle], { encoding: 'utf8' }).split('\n').filter((l) => l && !l.includes('pgrep')).join('\n');
  } catch {
    return '';
  }
};

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) if (cond()) return true;
  return cond();
}

describe('RunSession abort', () => {
  it('kills the command running on the host (its whole process group) and fails it as lost', async () => {
    const control = new RunControl();
    const session = new RunSession({ inventory, hosts: ['here'], mode: 'apply', json: true, diff: false, acceptNew: false, commandLine: 'test', control });
    try {
      const t = session.pool.get('here');
      // A unique argv to find it by; the child of a child, as a real task's commands are.
      const nap = `sleep 300.${randomInt(1e6)}`;
      const result = t.run(`sh -c '${nap}; true'`).then(
        () => 'finished',
        (e: Error) => e.message,
      );
      expect(await until(() => running(nap) !== '', 5000)).toBe(true);
      const t0 = Date.now();
      control.abort();
      expect(await result).toMatch(/state unknown/);
      expect(await until(() => running(nap) === '', 3000), running(nap)).toBe(true);
      console.log(`abort: command gone after ${Date.now() - t0} ms`);
    } finally {
      await session.close();
    }
  });
});
