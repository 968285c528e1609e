/** --shard K/N: every selected host in exactly one shard, balanced, rollouts kept whole. */
import { describe, expect, it } from 'vitest';
import { rolloutUnits, shardHosts } from '../../../src/engine/shard.js';
import { preparePlays } from '../../../src/engine/prepare.js';
import { createRenderer } from '../../../src/render/template.js';
import { buildRecord } from '../../../src/audit/record.js';
import { shard as parseShard } from '../../../src/cli/options.js';
import type { Inventory, HostSpec } from '../../../src/inventory/types.js';
import type { Play } from '../../../src/playbook/schema.js';

const singles = (names: string[]) => names.map((n) => [n]);
const split = (units: string[][], n: number) => Array.from({ length: n }, (_, i) => [...shardHosts(units, { index: i + 1, count: n })].sort());

describe('shardHosts', () => {
  const hosts = Array.from({ length: 10 }, (_, i) => `web${i + 1}`);

  it.each([1, 2, 3, 4, 10, 12])('N=%d: every host in exactly one shard, sizes within one of each other', (n) => {
    const shards = split(singles(hosts), n);
    expect(shards.flat().sort()).toEqual([...hosts].sort());
    const sizes = shards.map((s) => s.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('depends on the set of hosts, not on the order they are listed in', () => {
    expect(split(singles(hosts), 3)).toEqual(split(singles([...hosts].reverse()), 3));
  });

  it('never splits a unit; deals the largest first to the emptiest shard', () => {
    const units = [['lb1', 'lb2'], ['db1', 'db2', 'db3'], ['a'], ['b'], ['c']];
    expect(split(units, 2)).toEqual([
      ['b', 'db1', 'db2', 'db3'], // db (3) first; b when both shards hold 3
      ['a', 'c', 'lb1', 'lb2'],
    ]);
  });
});

describe('rolloutUnits', () => {
  it('a play that rolls out together joins its hosts; a host in two such plays joins both', () => {
    const units = rolloutUnits([
      { hosts: ['a', 'b', 'c', 'd', 'e'], together: false },
      { hosts: ['a', 'b'], together: true },
      { hosts: ['b', 'c'], together: true },
      { hosts: ['e'], together: true },
    ]);
    expect(units.map((u) => u.sort()).sort()).toEqual([['a', 'b', 'c'], ['d'], ['e']]);
  });
});

describe('preparePlays with a shard', () => {
  const names = ['lb1', 'lb2', 'web1', 'web2', 'web3', 'web4'];
  const inventory: Inventory = {
    env: 'test',
    dir: '/tmp/inv',
    hosts: new Map<string, HostSpec>(
      names.map((n) => [n, { name: n, conn: { connection: 'ssh', address: n, port: 22, user: 'admin', become: 'sudo' }, groups: ['all', n.replace(/\d$/, '')], vars: {}, provenance: new Map() }]),
    ),
    groups: new Map(['all', 'lb', 'web'].map((g) => [g, { name: g, children: [], hosts: [], vars: {} }])),
    knownHostsPath: '/tmp/inv/known_hosts',
  };
  const play = (p: Partial<Play>): Play => ({ name: 'p', hosts: 'all', roles: [], tasks: [], handlers: {}, vars: {}, anyErrorsFatal: false, tags: [], ...p });
  const plays = [play({ name: 'base' }), play({ name: 'balancers', hosts: 'lb', serial: [1] }), play({ name: 'web', hosts: 'web' })];
  const renderer = createRenderer({ sharedDir: '/nonexistent' });
  const prepare = (shard?: { index: number; count: number }, limit?: string) =>
    preparePlays({ inventory, plays, limit, shard, extraVars: {}, playbookDir: '/tmp/pb', renderString: renderer.renderString }).map((p) => p.hosts);

  it('the shards of a run cover its hosts once, play by play; a serial play stays in one shard', () => {
    const all = prepare();
    const shards = [1, 2, 3].map((k) => prepare({ index: k, count: 3 }));
    all.forEach((hosts, i) => expect(shards.flatMap((s) => s[i]).sort()).toEqual([...hosts].sort()));
    const withBalancers = shards.filter((s) => s[1].length > 0);
    expect(withBalancers).toHaveLength(1);
    expect(withBalancers[0][1]).toEqual(['lb1', 'lb2']);
    // Balanced by hosts: 6 hosts, the lb pair as one unit → 2 + 2 + 2.
    expect(shards.map((s) => s[0].length)).toEqual([2, 2, 2]);
  });

  it('splits the hosts --limit selected, not the inventory', () => {
    const shards = [1, 2].map((k) => prepare({ index: k, count: 2 }, 'web'));
    expect(shards.map((s) => s[0].length)).toEqual([2, 2]);
    expect(shards.flatMap((s) => s[0]).sort()).toEqual(['web1', 'web2', 'web3', 'web4']);
  });
});

describe('the CLI and the audit trail', () => {
  it.each([['2/4', { index: 2, count: 4 }], [' 1/1 ', { index: 1, count: 1 }]])('--shard %j', (v, want) => {
    expect(parseShard(v)).toEqual(want);
  });

  it.each(['0/2', '3/2', '1/0', '2', 'a/b', '1/2/3'])('--shard %j is refused', (v) => {
    expect(() => parseShard(v)).toThrow(/K\/N/);
  });

  it('a sharded run says so in its audit record; an unsharded one has no shard field', () => {
    const base = { runId: 'r', commandLine: 'infra apply -i lab --shard 2/4', inventory: 'lab', mode: 'apply' as const, recap: [], changedTasks: {}, started: 0, ended: 0, exitCode: 0, user: 'u', controller: 'c', git: null };
    expect(buildRecord({ ...base, shard: '2/4' })).toMatchObject({ shard: '2/4' });
    expect('shard' in buildRecord(base)).toBe(false);
  });
});
