/** Patch policies from group vars: patch groups, their order, safe defaults, and input errors with file:line. */
import { describe, it, expect, afterEach } from 'vitest';
import { loadInventory } from '../../../src/inventory/load.js';
import { lockedDecryptor } from '../../../src/engine/input.js';
import { REPO_ROOT } from '../../../src/lab/options.js';
import { UserError, UserErrors } from '../../../src/errors.js';
import { resolvePolicies } from '../../../src/patch/policy.js';
import { tmpTree, removeTrees } from '../inventory/tmp-tree.js';

afterEach(removeTrees);

const HOSTS = `hosts:
  lb1: { address: 10.0.0.11, groups: [lb] }
  lb2: { address: 10.0.0.12, groups: [lb] }
  api1: { address: 10.0.0.21, groups: [api] }
  api2: { address: 10.0.0.22, groups: [api] }
  r1: { address: 10.0.0.41, groups: [redis_master, sentinel] }
  r2: { address: 10.0.0.42, groups: [redis_replica, sentinel] }
  mon1: { address: 10.0.0.51, groups: [monitoring, sentinel] }
  misc1: { address: 10.0.0.61, groups: [misc] }
groups:
  lb: {}
  api: {}
  redis: { children: [redis_master, redis_replica] }
  redis_master: {}
  redis_replica: {}
  sentinel: {}
  misc: {}
  monitoring: {}
`;

async function inventory(files: Record<string, string>) {
  const dir = tmpTree({ 'hosts.yaml': HOSTS, ...files });
  return loadInventory(dir, { cwd: dir, decryptor: lockedDecryptor });
}

function errorsOf(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    if (e instanceof UserErrors) return e.errors.map((x) => x.format());
    if (e instanceof UserError) return [e.format()];
    throw e;
  }
  throw new Error('no error');
}

describe('resolvePolicies', () => {
  it('a host belongs to the most specific group setting patch; groups run by order, then inventory order', async () => {
    const inv = await inventory({
      'group_vars/all.yaml': 'patch: { reboot: never }\n',
      'group_vars/lb.yaml': 'patch: { order: 10, strategy: keepalived-vip }\n',
      'group_vars/api.yaml': 'patch: { order: 20, strategy: haproxy-drain, serial: 1 }\n',
      'group_vars/redis.yaml': 'patch: { order: 30, strategy: redis-sentinel }\n',
      'group_vars/monitoring.yaml': 'patch: { order: 80 }\n',
    });
    const { hosts, groups } = resolvePolicies(inv, [...inv.hosts.keys()]);
    expect(groups.map((g) => [g.name, g.order, g.strategy, g.hosts])).toEqual([
      ['lb', 10, 'keepalived-vip', ['lb1', 'lb2']],
      ['api', 20, 'haproxy-drain', ['api1', 'api2']],
      ['redis', 30, 'redis-sentinel', ['r1', 'r2']],
      ['all', 50, 'none', ['misc1']],
      ['monitoring', 80, 'none', ['mon1']],
    ]);
    // all's defaults flow into every group's policy (the merge of ordinary variables).
    expect(hosts.get('lb1')!.policy.reboot).toBe('never');
    expect(hosts.get('misc1')!.policy).toMatchObject({ serial: 1, reboot: 'never', restart_services: true, pre: [], post: [] });
  });

  it('no policy anywhere: every host alone, in place, reboot auto (the safe defaults)', async () => {
    const inv = await inventory({});
    const { groups } = resolvePolicies(inv, ['api1', 'api2']);
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ name: 'all', serial: 1, strategy: 'none' });
    expect(groups[0].policy).toMatchObject({ reboot: 'auto' });
    expect(groups[0].policy.window).toBeUndefined();
  });

  it('host_vars change what is per host; a host changing the rollout shape of its group is an error', async () => {
    const inv = await inventory({
      'group_vars/api.yaml': 'patch: { strategy: haproxy-drain }\n',
      'host_vars/api1.yaml': 'patch: { post: ["curl -f localhost/health"], reboot: never }\n',
      'host_vars/api2.yaml': '\npatch: { serial: 2 }\n',
    });
    const errors = errorsOf(() => resolvePolicies(inv, ['api1', 'api2']));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/host_vars\/api2\.yaml:2:1: host api2 sets patch\.serial to 2, its patch group api to 1/);
    expect(errors[0]).toMatch(/hint: .*set them in group_vars\/api\.yaml only/);
    expect(resolvePolicies(inv, ['api1']).hosts.get('api1')!.policy).toMatchObject({ reboot: 'never', post: ['curl -f localhost/health'] });
  });

  it('a host in two groups that both set patch, neither inside the other, is an error naming both files', async () => {
    const inv = await inventory({ 'group_vars/monitoring.yaml': 'patch: { order: 80 }\n', 'group_vars/sentinel.yaml': 'patch: { order: 35 }\n' });
    const errors = errorsOf(() => resolvePolicies(inv, ['mon1']));
    expect(errors[0]).toMatch(/host mon1 is in two patch groups: monitoring \(.*group_vars\/monitoring\.yaml:1:1\) and sentinel \(.*group_vars\/sentinel\.yaml:1:1\)/);
  });

  it.each([
    ['patch: { strategy: keepalived-vip, serial: 2 }', 'lb', /strategy keepalived-vip patches one member at a time/],
    ['patch: { strategy: postgres, postgres: { primary: switchover } }', 'lb', /switchover is not available yet/],
    ['patch: { strategy: drain }', 'lb', /patch\.strategy \(host lb1\): expected one of none, keepalived-vip, haproxy-drain, redis-sentinel, postgres/],
    ['patch: { orde: 10 }', 'lb', /patch \(host lb1\): unknown key "orde"/],
    ['patch: { serial: "150%" }', 'lb', /patch\.serial \(host lb1\)/],
    ['patch: { haproxy: { backend: "api; reboot" } }', 'lb', /patch\.haproxy\.backend \(host lb1\): an HAProxy backend name/],
    ['patch: { window: sunday }', 'lb', /patch\.window "sunday" is not in patch_windows \(none defined\)/],
    ['patch: { window: w }\npatch_windows: { w: "Sun 02:00-04:00 Moon/Base" }', 'lb', /patch_windows\.w: .*unknown time zone "Moon\/Base"/],
  ])('%s → an input error with file:line', async (text, group, message) => {
    const inv = await inventory({ [`group_vars/${group}.yaml`]: `${text}\n` });
    const errors = errorsOf(() => resolvePolicies(inv, ['lb1']));
    expect(errors[0]).toMatch(message);
    expect(errors[0]).toMatch(new RegExp(`group_vars/${group}\\.yaml:\\d+:\\d+: `));
  });

  it('a window resolves to its periods', async () => {
    const inv = await inventory({ 'group_vars/all.yaml': 'patch_windows: { weekly: ["Sun 02:00-04:00 Europe/Berlin", "Wed 22:00-23:00 UTC"] }\npatch: { window: weekly }\n' });
    const w = resolvePolicies(inv, ['lb1']).hosts.get('lb1')!.window!;
    expect([w.name, w.periods.map((p) => p.text)]).toEqual(['weekly', ['Sun 02:00-04:00 Europe/Berlin', 'Wed 22:00-23:00 UTC']]);
  });
});

describe('the shipped inventories', () => {
  it.each(['lab', 'prod'])('%s: load balancers, API, Redis, PostgreSQL, the rest, monitoring, the bastion last', async (env) => {
    const inv = await loadInventory(env, { cwd: REPO_ROOT, decryptor: lockedDecryptor });
    const { hosts, groups } = resolvePolicies(inv, [...inv.hosts.keys()]);
    expect(groups.map((g) => [g.name, g.strategy, g.hosts])).toEqual([
      ['lb', 'keepalived-vip', ['lb1', 'lb2']],
      ['api', 'haproxy-drain', ['api1', 'api2']],
      ['redis', 'redis-sentinel', ['redis1', 'redis2']],
      ['postgres', 'postgres', ['db1', 'db2']],
      ['all', 'none', ['backup1']],
      ['monitoring', 'none', ['mon1']],
      ['bastion', 'none', ['bastion']],
    ]);
    expect(hosts.get('bastion')!.policy.reboot).toBe('never');
    expect(hosts.get('api1')!.policy.post).toEqual(['curl -fsS -o /dev/null --max-time 5 http://127.0.0.1/health']);
    expect(hosts.get('db1')!.window?.periods.map((p) => p.text)).toEqual(env === 'prod' ? ['Sun 02:00-04:00 Europe/Berlin'] : undefined);
  });
});
