/**
 * cluster.primary through the engine: each member is asked through its own session (even a
 * member outside --limit), the run passes while the live primary is the inventory's, and
 * after a "failover" it stops every host before the next task, saying what it found.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { join } from 'node:path';
import { startFleet, type Fleet } from './fleet.js';
import { infra, taskResults, REPO } from './helpers/cli.js';

const PLAYBOOK = join(REPO, 'test/fixtures/playbooks/cluster/guard.yaml');
let fleet: Fleet;

beforeAll(async () => {
  fleet = await startFleet({ targets: 2 }).catch(() => startFleet({ targets: 2 }));
}, 300_000);
afterAll(async () => {
  await fleet?.down();
});

const roles = async (t1: string, t2: string) => {
  await fleet.exec('target1', `echo ${t1} > /etc/infra-test-role`);
  await fleet.exec('target2', `echo ${t2} > /etc/infra-test-role`);
};
const apply = (...extra: string[]) => infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json', ...extra]);
const guard = (r: Awaited<ReturnType<typeof apply>>, host: string) => taskResults(r, host).find((e) => e.module === 'cluster.primary')!;

describe('cluster.primary', () => {
  it('a cluster not built yet: the inventory stands', async () => {
    const r = await apply();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(guard(r, 'target1').reason).toMatch(/^no member answers as primary yet \(role file on target1: exit 1: cat: \/etc\/infra-test-role: No such file or directory, target2: exit 1/);
  });

  it('the live primary is the inventory\'s: passes on every host', async () => {
    await roles('primary', 'replica');
    const r = await apply();
    expect(r.code).toBe(0);
    for (const h of ['target1', 'target2']) {
      expect(guard(r, h)).toMatchObject({ status: 'ok', reason: 'target1 is the primary, as the inventory says (role file on target1: primary, target2: replica)' });
    }
  });

  it('after a failover: every host stops at the guard with what it found; a member outside --limit is still asked', async () => {
    await roles('replica', 'primary');
    await fleet.exec('target2', 'rm -f /etc/infra-test-after-guard');
    const r = await apply('-l', 'target2');
    expect(r.code).toBe(1);
    expect(r.recap.map((x) => x.host)).toEqual(['target2']);
    const g = guard(r, 'target2');
    expect(g.status).toBe('failed');
    expect(g.error).toBe(
      'the inventory says target1 is the primary of targets, but target2 is (role file on target1: replica, target2: primary). ' +
        'Stopping here so nothing reverts the failover. Make target2 the primary in the inventory, then run again.',
    );
    // The task after the guard did not run.
    expect(taskResults(r, 'target2').map((e) => e.module)).toEqual(['cluster.primary']);
    expect((await fleet.exec('target2', 'test -e /etc/infra-test-after-guard')).code).toBe(1);
  });
});
