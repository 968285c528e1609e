/**
 * roles/redis-sentinel with no host: the task list per kind of host (master, replica,
 * Sentinel-only, in a container, on Ubuntu 22.04), settings sized from facts, the topology
 * and variable errors, and bad input through the real CLI: exit 2 with file:line, before
 * anything connects.
 */
import { describe, it, expect } from 'vitest';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import role, { vars as redisVars, redisSettings } from '../../../roles/redis-sentinel/role.js';
import { grantsDangerous } from '../../../roles/redis-sentinel/acl.js';
import { Secret } from '../../../src/secrets/secret.js';
import { UserError } from '../../../src/errors.js';
import type { Task } from '../../../src/modules/types.js';
import { contextFor, fakeInventory, type FakeInventory } from './context.js';
import { infra } from '../cli/run-cli.js';

const secrets = {
  redis_admin_password: new Secret('admin-pw'),
  redis_replication_password: new Secret('repl-pw'),
  redis_sentinel_password: new Secret('sentinel-pw'),
  redis_monitoring_password: new Secret('monitoring-pw'),
  redis_app_users: [{ name: 'app', password: new Secret('app-pw') }],
};

const FLEET: FakeInventory = {
  hosts: {
    redis1: { address: '10.20.0.41', groups: ['redis_master', 'sentinel'], bastion: 'bastion' },
    redis2: { address: '10.20.0.42', groups: ['redis_replica', 'sentinel'], bastion: 'bastion' },
    mon1: { address: '10.20.0.51', groups: ['monitoring', 'sentinel'], bastion: 'bastion' },
    bastion: { address: '203.0.113.10', groups: ['bastion'], vars: { private_address: '10.20.0.2' } },
  },
  groups: { all: { vars: secrets }, redis: { children: ['redis_master', 'redis_replica'] }, redis_master: {}, redis_replica: {}, sentinel: {} },
};

const UBUNTU = { os: { id: 'ubuntu', versionId: '22.04', codename: 'jammy', prettyName: 'Ubuntu 22.04.4 LTS', family: 'debian' as const } };
const KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGA...\n-----END PGP PUBLIC KEY BLOCK-----\n';

const tasksOf = (host: string, opts: Parameters<typeof contextFor>[3] = {}, inv = fakeInventory(FLEET)): Task[] => role.tasks(contextFor(redisVars, inv, host, opts));
const names = (tasks: Task[]) => tasks.map((t) => t.module.name);
const params = <T = Record<string, unknown>>(tasks: Task[], module: string): T => tasks.find((t) => t.module.name === module)!.params as T;

describe('the task list reads like the install guide', () => {
  it('a master that is also a Sentinel: packages, kernel, users, config, service, replication, exporter, then Sentinel', () => {
    expect(names(tasksOf('redis1'))).toEqual([
      'apt.packages',
      'command.run',
      'sysctl.param',
      'redis.acl',
      'redis.config',
      'systemd.service',
      'redis.replication',
      'files.directory',
      'files.template',
      'files.template',
      'systemd.service',
      'systemd.service',
      'redis.config',
      'redis.sentinel',
    ]);
    expect(params<{ names: string[] }>(tasksOf('redis1'), 'apt.packages').names).toEqual(['redis-server', 'redis-tools', 'prometheus-redis-exporter', 'redis-sentinel']);
    // Debian's /etc/redis is 2770: made 0750 (owner-writable only) before anything is written there.
    expect(params<{ cmd: string }>(tasksOf('redis1'), 'command.run').cmd).toContain('dpkg-statoverride --update --add redis redis 0750 /etc/redis');
  });

  it('a Sentinel-only host gets Sentinel and nothing of Redis', () => {
    const t = tasksOf('mon1');
    expect(names(t)).toEqual(['apt.packages', 'command.run', 'systemd.service', 'redis.config', 'redis.sentinel']);
    expect(params<{ names: string[] }>(t, 'apt.packages').names).toEqual(['redis-sentinel', 'redis-tools']);
    const s = params<{ peers: { name: string }[]; inventoryMaster: { name: string; ip: string } }>(t, 'redis.sentinel');
    expect(s.peers.map((p) => p.name)).toEqual(['redis1', 'redis2']);
    expect(s.inventoryMaster).toMatchObject({ name: 'redis1', ip: '10.20.0.41' });
  });

  it('every host asks the same Sentinels and knows the same inventory master', () => {
    const r = params<{ sentinels: { ip: string }[]; self: { ip: string }; inventoryMaster: { name: string } }>(tasksOf('redis2'), 'redis.replication');
    expect(r.sentinels.map((s) => s.ip)).toEqual(['10.20.0.41', '10.20.0.42', '10.20.0.51']);
    expect(r.self.ip).toBe('10.20.0.42');
    expect(r.inventoryMaster.name).toBe('redis1');
  });

  it('in a container the live vm.overcommit_memory is reported skipped, and only persisted', () => {
    const t = tasksOf('redis1', { facts: { container: 'docker' } });
    expect(params<{ live: boolean }>(t, 'sysctl.param').live).toBe(false);
    expect(params<{ reason: string }>(t, 'meta.skip').reason).toMatch(/container/);
    expect(names(tasksOf('redis1'))).not.toContain('meta.skip');
  });

  it('Ubuntu 22.04: Redis 7 from packages.redis.io with the pinned key (Debian 12: from Debian)', () => {
    const t = tasksOf('redis1', { facts: UBUNTU, vars: { redis_upstream_repo_key: KEY } });
    expect(names(t).slice(0, 2)).toEqual(['apt.repository', 'apt.packages']);
    expect(params(t, 'apt.repository')).toMatchObject({ name: 'redis', uris: 'https://packages.redis.io/deb', suites: 'jammy', key: KEY });
    expect(names(tasksOf('redis1'))).not.toContain('apt.repository');
    expect(() => tasksOf('redis1', { facts: UBUNTU })).toThrow(/redis_upstream_repo_key is not set/);
    expect(() => tasksOf('redis1', { facts: { os: { ...UBUNTU.os, versionId: '20.04', codename: 'focal' } } })).toThrow(/ubuntu 20.04 is not supported/);
  });

  it('every task of every host passes its module schema', () => {
    for (const h of ['redis1', 'redis2', 'mon1']) {
      for (const t of [...tasksOf(h), ...tasksOf(h, { facts: UBUNTU, vars: { redis_upstream_repo_key: KEY } })]) {
        const r = t.module.params.safeParse(t.params);
        expect(r.success, `${h} ${t.module.name}: ${r.success ? '' : r.error.message}`).toBe(true);
      }
    }
  });
});

describe('settings from vars and facts', () => {
  const v = redisVars.parse(secrets);
  it('maxmemory is half the RAM by default, or the fixed size given; replicaof is never ours', () => {
    expect(redisSettings(v, '10.0.0.5', 4096).maxmemory).toBe('2048mb');
    expect(redisSettings(redisVars.parse({ ...secrets, redis_maxmemory_percent: 25 }), '10.0.0.5', 4096).maxmemory).toBe('1024mb');
    expect(redisSettings(redisVars.parse({ ...secrets, redis_maxmemory_mb: 300 }), '10.0.0.5', 4096).maxmemory).toBe('300mb');
    const s = redisSettings(v, '10.0.0.5', 4096);
    expect(s).toMatchObject({ bind: '10.0.0.5 127.0.0.1', 'protected-mode': 'yes', appendonly: 'yes', appendfsync: 'everysec', aclfile: '/etc/redis/users.acl', masteruser: 'replication', 'maxmemory-policy': 'noeviction' });
    expect(s.masterauth).toBeInstanceOf(Secret);
    expect(Object.keys(s)).not.toContain('replicaof');
  });

  it('TLS on: the plaintext port closes and the same number speaks TLS, replication included; a certificate from the internal CA; clients verify it', () => {
    const s = redisSettings(redisVars.parse({ ...secrets, redis_tls: { enabled: true } }), '10.0.0.5', 4096);
    expect(s).toMatchObject({ port: '0', 'tls-port': '6379', 'tls-replication': 'yes', 'tls-ca-cert-file': '/etc/ssl/redis/ca.crt' });
    const t = tasksOf('redis1', { vars: { redis_tls: { enabled: true } } });
    expect(names(t).slice(0, 5)).toEqual(['apt.packages', 'command.run', 'files.directory', 'tls.certificate', 'sysctl.param']);
    expect(t[3].notify).toEqual(['restart redis', 'restart redis sentinel']);
    expect(params(t, 'tls.certificate')).toMatchObject({ certPath: '/etc/ssl/redis/redis.crt', keyPath: '/etc/ssl/redis/redis.key', caPath: '/etc/ssl/redis/ca.crt', group: 'redis', keyMode: '0640' });
    const tls = { caFile: '/etc/ssl/redis/ca.crt' };
    // The certificate names the host's addresses, not 127.0.0.1: local clients use the private address.
    expect(params<{ server: unknown }>(t, 'redis.replication').server).toMatchObject({ host: '10.20.0.41', tls });
    expect(params(t, 'redis.sentinel')).toMatchObject({ host: '10.20.0.41', tls });
    const sentinelConf = t.filter((x) => x.module.name === 'redis.config').map((x) => (x.params as { settings: Record<string, unknown> }).settings)[1];
    expect(sentinelConf).toMatchObject({ port: '0', 'tls-port': '26379', 'tls-replication': 'yes' });
    const exporter = t.filter((x) => x.module.name === 'files.template').map((x) => (x.params as { vars: { addr: string; args?: string } }).vars);
    expect(exporter.map((x) => x.addr)).toEqual(['rediss://10.20.0.41:6379', 'rediss://10.20.0.41:6379']);
    expect(exporter[1].args).toBe(' -tls-ca-cert-file=/etc/ssl/redis/ca.crt');
    expect(tasksOf('mon1', { vars: { redis_tls: { enabled: true } } }).find((x) => x.module.name === 'tls.certificate')!.notify).toEqual(['restart redis sentinel']);
    expect(names(tasksOf('redis1'))).not.toContain('tls.certificate');
  });
});

describe('bad topologies and variables', () => {
  it('exactly one inventory master', () => {
    const two = fakeInventory({ ...FLEET, hosts: { ...FLEET.hosts, redis2: { ...FLEET.hosts.redis2, groups: ['redis_master', 'sentinel'] } } });
    expect(() => tasksOf('redis1', {}, two)).toThrow(UserError);
    expect(() => tasksOf('redis1', {}, two)).toThrow(/must hold exactly one host \(it holds 2: redis1, redis2\)/);
  });

  it('no more quorum than Sentinels', () => {
    expect(() => tasksOf('redis1', { vars: { redis_sentinel_quorum: 4 } })).toThrow(/quorum is 4 but group sentinel has 3 host/);
  });

  it('an app user never gets @dangerous', () => {
    expect(grantsDangerous(['+@all', '-@dangerous'])).toBe(false);
    expect(grantsDangerous(['+@all'])).toBe(true);
    expect(grantsDangerous(['-@all', '+@read', '+@dangerous'])).toBe(true);
    expect(redisVars.safeParse({ ...secrets, redis_app_users: [{ name: 'app', password: new Secret('x-pw'), commands: ['+@all'] }] }).success).toBe(false);
  });

  it('a password in clear text is refused; a missing one is "not set"', () => {
    const clear = redisVars.safeParse({ ...secrets, redis_admin_password: 'hunter2' });
    expect(clear.success || clear.error.issues[0].message).toMatch(/must be a !vault value/);
    const missing = redisVars.safeParse({ ...secrets, redis_admin_password: undefined });
    expect(missing.success || missing.error.issues[0].message).toMatch(/not set; create it once: openssl rand .* --name redis_admin_password/);
  });

  it("an app user may not take a name the role uses itself", () => {
    expect(() => tasksOf('redis1', { vars: { redis_app_users: [{ name: 'sentinel', password: new Secret('x-pw') }] } })).toThrow(/"sentinel" is a user the role defines itself/);
  });
});

describe('through the CLI (no network)', () => {
  const FIXTURE = 'test/fixtures/playbooks/redis';
  const VAULT = `${FIXTURE}/vault-password`;

  it('check passes on the fixture inventory, with or without the vault password', async () => {
    for (const extra of [[], ['--vault-password-file', VAULT]]) {
      const r = await infra(['check', `${FIXTURE}/role-only.yaml`, '-i', `${FIXTURE}/inventory`, ...extra]);
      expect([r.code, r.stderr]).toEqual([0, '']);
    }
  });

  it.each([
    ['sentinel.yaml', 'redis_sentinel_quorum: 2', 'redis_sentinel_quorum: two', 1, /variable redis_sentinel_quorum: expected number, got string "two"/],
    // Role variables are placed at their top-level key (the engine's granularity).
    ['all.yaml', '  - name: app', '  - name: app\n    commands: ["+@all"]', 7, /redis_app_users\[0\]\.commands: an application user must not get @dangerous/],
  ])('bad input in %s: apply exits 2 with file:line before connecting', async (fileName, from, to, line, message) => {
    const dir = await mkdtemp(join(tmpdir(), 'infra-redis-bad-'));
    await cp(`${FIXTURE}/inventory`, dir, { recursive: true });
    const f = join(dir, 'group_vars', fileName);
    await writeFile(f, (await readFile(f, 'utf8')).replace(from, to));
    const r = await infra(['apply', `${FIXTURE}/role-only.yaml`, '-i', dir, '--vault-password-file', VAULT]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^error: ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}:\\d+: role redis-sentinel: `));
    expect(r.stderr).toMatch(message);
    // Nothing connected: the documentation addresses would have timed out, not exited 2 at once.
    expect(r.stdout).not.toMatch(/connecting|UNREACHABLE/);
  });
});
