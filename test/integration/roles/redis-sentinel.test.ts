/**
 * Issue 13 end to end, on one fleet: redis1 (master + Sentinel), redis2 (replica + Sentinel),
 * mon1 (Sentinel, monitoring), api1 (the client). Converge once (hardening + the role), then
 * ask the running services what ROLES.md asks: ACL users, replication, Sentinel quorum, AOF,
 * the exporter, the firewall openings. Then idempotence (0 changed, plan exit 0), then the
 * drills: SENTINEL FAILOVER followed by a re-converge that must not fight it, and the master's
 * container killed while a Sentinel-aware client keeps writing.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startFleet, type Fleet } from '../fleet.js';
import { vaultEncrypt, infra, taskResults, REPO, type CliResult, cliWorkspace } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const PLAYBOOK = join(REPO, 'test/fixtures/playbooks/redis/site.yaml');
const DOWN_AFTER_MS = 2000;
const FAILOVER_TIMEOUT_MS = 10_000;

// Every password different, and awkward on purpose: a quote, a space, a dollar.
const PASSWORDS = {
  redis_admin_password: `admin-${randomBytes(9).toString('hex')}`,
  redis_replication_password: `repl "${randomBytes(6).toString('hex')}" $HOME`,
  redis_sentinel_password: `sentinel-${randomBytes(9).toString('hex')}`,
  redis_monitoring_password: `monitoring-${randomBytes(9).toString('hex')}`,
};
const APP_PASSWORD = `app-${randomBytes(9).toString('hex')}`;

let fleet: Fleet;
let work: string;
let env: Record<string, string>;
let first: CliResult;
const started = Date.now();
const ip: Record<string, string> = {};

/** The lab's firewall openings for a group (its secrets are the lab's, not this fleet's). */
const labFirewall = async (group: string): Promise<Record<string, unknown>> => {
  const vars = parse(await readFile(join(REPO, 'inventories/lab/group_vars', `${group}.yaml`), 'utf8'), { logLevel: 'silent' }) as Record<string, unknown>;
  return { firewall: vars.firewall };
};

/** A shell word for a value that the test (not the code under test) sends. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** redis-cli on `from`, authenticated as the app user (password through the environment, as a client would). */
const asApp = (from: string, host: string, args: string) => fleet.exec(from, `REDISCLI_AUTH=${q(APP_PASSWORD)} redis-cli -e --no-auth-warning --user app -h ${host} ${args} 2>&1`);
const asAdmin = (host: string, args: string) => fleet.exec(host, `REDISCLI_AUTH=${q(PASSWORDS.redis_admin_password)} redis-cli -e --user admin ${args} 2>&1`);
const sentinel = (host: string, args: string) => fleet.exec(host, `redis-cli -p 26379 ${args}`);
const info = async (host: string): Promise<string> => (await asAdmin(host, 'INFO replication')).stdout;
const apply = (args: string[] = []) => infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json', ...args], { env, timeoutMs: 600_000 });
/** The drills re-converge the role only: the whole playbook's idempotence is proven before them. */
const ROLE_ONLY = ['--tags', 'redis-sentinel'];
const changedTasks = (r: CliResult) => r.events.filter((e) => e.type === 'task.result' && e.status === 'changed');

beforeAll(async () => {
  let passwordFile: string;
  ({ work, passwordFile, env } = await cliWorkspace('redis', 'redis test vault'));
  fleet = await startFleet({
    baseline: true, // the hardening role's packages already there (hardening.test.ts installs them)
    targets: [
      { name: 'redis1', groups: ['redis', 'redis_master', 'sentinel'] },
      { name: 'redis2', groups: ['redis', 'redis_replica', 'sentinel'] },
      { name: 'mon1', groups: ['monitoring', 'sentinel'] },
      { name: 'api1', groups: ['api'] },
    ],
  });
  for (const t of fleet.targets) ip[t.name] = t.ip;
  ip.bastion = fleet.bastion.ip;

  // The lab's own firewall openings, and the role's secrets as vault values.
  const all: Record<string, unknown> = { ...(await labFirewall('all')), redis_sentinel_down_after_ms: DOWN_AFTER_MS, redis_sentinel_failover_timeout_ms: FAILOVER_TIMEOUT_MS };
  const vaulted = await Promise.all(Object.entries(PASSWORDS).map(async ([k, v]) => `${k}: ${await vaultEncrypt(k, v, passwordFile)}`));
  const app = await vaultEncrypt('redis_app_users.0.password', APP_PASSWORD, passwordFile);
  const dir = join(fleet.inventoryDir, 'group_vars');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'all.yaml'), `${stringify(all)}${vaulted.join('\n')}\nredis_app_users:\n  - name: app\n    password: ${app}\n`);
  for (const g of ['redis', 'sentinel', 'monitoring']) await writeFile(join(dir, `${g}.yaml`), JSON.stringify(await labFirewall(g)));

  // The client host gets redis-cli while the others converge (the playbook leaves it alone).
  const install = 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=120 redis-tools >/dev/null';
  const [tools, applied] = await Promise.all([fleet.exec('api1', `${install} 2>&1 || (apt-get update -q >/dev/null 2>&1 && ${install})`), apply(['--verify'])]);
  first = applied;
  expect(tools.code, tools.stderr).toBe(0);
}, 900_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
  console.log(`redis-sentinel.test.ts: ${((Date.now() - started) / 1000).toFixed(1)} s (first apply ${((first?.durationMs ?? 0) / 1000).toFixed(1)} s)`);
});

describe('redis-sentinel: converge once, then ask the services', () => {
  it('the first apply converges every host (--verify: each change checked again)', () => {
    expect(first.events.filter((e) => e.type === 'task.result' && e.status === 'failed')).toEqual([]);
    expect(first.code).toBe(0);
    expect(first.recap.map((r) => r.host).sort()).toEqual(['mon1', 'redis1', 'redis2']);
  });

  it('no password and no password hash shows in the output', async () => {
    const out = first.stdout + first.stderr;
    for (const pw of [...Object.values(PASSWORDS), APP_PASSWORD]) expect(out).not.toContain(pw);
    const acl = (await fleet.exec('redis1', 'cat /etc/redis/users.acl')).stdout;
    for (const hash of acl.match(/#[0-9a-f]{64}/g) ?? []) expect(out).not.toContain(hash.slice(1));
  });

  it('ACL: the app user gets PONG from the api host, no user gets NOAUTH, the app user has no @dangerous', async () => {
    expect((await asApp('api1', ip.redis1, 'PING')).stdout.trim()).toBe('PONG');
    const anonymous = await fleet.exec('api1', `redis-cli -e -h ${ip.redis1} PING 2>&1`);
    expect(anonymous.stdout).toMatch(/NOAUTH/);
    expect(anonymous.code).not.toBe(0);
    expect((await asApp('api1', ip.redis1, 'FLUSHALL')).stdout).toMatch(/NOPERM/);
    expect((await asApp('api1', ip.redis1, 'CONFIG GET masterauth')).stdout).toMatch(/NOPERM/);
  });

  it('the aclfile holds sha256 hashes, never a password; 0640 redis', async () => {
    const acl = await fleet.exec('redis1', 'stat -c "%a %U %G" /etc/redis/users.acl; cat /etc/redis/users.acl');
    expect(acl.stdout).toMatch(/^640 redis redis$/m);
    expect(acl.stdout).toMatch(/^user default off resetchannels -@all$/m);
    expect(acl.stdout).toMatch(/^user app on #[0-9a-f]{64} ~\* resetchannels \+@all -@dangerous$/m);
    for (const pw of [...Object.values(PASSWORDS), APP_PASSWORD]) expect(acl.stdout).not.toContain(pw);
  });

  it('replication: the master has one connected replica, the replica link is up, writes reach it', async () => {
    expect(await info('redis1')).toMatch(/^connected_slaves:1\r?$/m);
    await waitFor('master_link_status:up', async () => ((await info('redis2')).match(/^master_link_status:up\r?$/m) ? true : undefined), 20_000);
    expect(await info('redis2')).toMatch(new RegExp(`^master_host:${ip.redis1.replace(/\./g, '\\.')}\\r?$`, 'm'));
    expect((await asApp('api1', ip.redis1, 'SET greeting hello')).stdout.trim()).toBe('OK');
    await waitFor('the key on the replica', async () => ((await asApp('api1', ip.redis2, 'GET greeting')).stdout.trim() === 'hello' ? true : undefined), 10_000);
    expect((await asApp('api1', ip.redis2, 'SET x 1')).stdout).toMatch(/READONLY/);
  });

  it('Sentinel: every Sentinel names redis1, and the quorum is reachable', async () => {
    for (const h of ['redis1', 'redis2', 'mon1']) {
      expect((await sentinel(h, 'SENTINEL get-master-addr-by-name main')).stdout.split('\n').slice(0, 2)).toEqual([ip.redis1, '6379']);
    }
    // A Sentinel counts the others once their hello messages (every 2 s) arrive: slow on a loaded machine.
    for (const h of ['redis1', 'redis2', 'mon1']) {
      await waitFor(`${h} to count 3 usable Sentinels`, async () => (/^OK 3 usable Sentinels/.test((await sentinel(h, 'SENTINEL ckquorum main')).stdout) ? true : undefined), 25_000).catch(() => undefined);
      expect((await sentinel(h, 'SENTINEL ckquorum main')).stdout).toMatch(/^OK 3 usable Sentinels/);
    }
    const fields = async () => {
      const master = (await sentinel('mon1', 'SENTINEL MASTER main')).stdout.split('\n');
      const field = (k: string) => master[master.indexOf(k) + 1];
      return [field('quorum'), field('down-after-milliseconds'), field('failover-timeout'), field('num-other-sentinels'), field('num-slaves')];
    };
    const want = ['2', String(DOWN_AFTER_MS), String(FAILOVER_TIMEOUT_MS), '2', '1'];
    // Sentinel finds replicas and other Sentinels by itself (INFO every 10 s, hello messages every 2 s).
    await waitFor('mon1 to know the replica and the other Sentinels', async () => (JSON.stringify(await fields()) === JSON.stringify(want) ? true : undefined), 25_000).catch(() => undefined);
    expect(await fields()).toEqual(want);
  });

  it('persistence: AOF everysec + RDB; maxmemory is half the RAM; bound to the private address and loopback, protected mode on', async () => {
    const persistence = (await asAdmin('redis1', 'INFO persistence')).stdout;
    expect(persistence).toMatch(/^aof_enabled:1\r?$/m);
    const config = (await asAdmin('redis1', 'CONFIG GET appendfsync save maxmemory maxmemory-policy bind protected-mode')).stdout.trim().split('\n');
    const get = (k: string) => config[config.indexOf(k) + 1];
    expect(get('appendfsync')).toBe('everysec');
    expect(get('save')).toBe('3600 1 300 100 60 10000');
    expect(get('maxmemory-policy')).toBe('noeviction');
    const memTotalKb = Number(/MemTotal:\s+(\d+)/.exec((await fleet.exec('redis1', 'cat /proc/meminfo')).stdout)![1]);
    expect(Number(get('maxmemory'))).toBe(Math.floor((Math.floor(memTotalKb / 1024) * 50) / 100) * 1024 * 1024);
    expect(get('bind')).toBe(`${ip.redis1} 127.0.0.1`);
    expect(get('protected-mode')).toBe('yes');
    const listening = (await fleet.exec('redis1', "ss -Hltn 'sport = :6379' | awk '{print $4}' | sort")).stdout.trim().split('\n');
    expect(listening).toEqual([`${ip.redis1}:6379`, '127.0.0.1:6379'].sort());
  });

  it('the exporter answers redis_up 1 with its own user, on the private address', async () => {
    const metrics = (await fleet.exec('mon1', `curl -sf http://${ip.redis2}:9121/metrics`)).stdout;
    expect(metrics).toMatch(/^redis_up 1$/m);
    expect(metrics).toMatch(/^redis_exporter_last_scrape_error\{err=""\} 0$/m);
    expect(metrics).toMatch(/^redis_connected_slaves 0$/m);
    expect((await fleet.exec('redis2', 'ps -eo args | grep [r]edis-exporter')).stdout).not.toContain(PASSWORDS.redis_monitoring_password);
  });

  it('the firewall opens each port to the groups the inventory names, and refuses another', async () => {
    const probe = async (from: string, to: string, port: number) =>
      (await fleet.exec(from, `timeout 2 bash -c 'echo > /dev/tcp/${ip[to]}/${port}' 2>/dev/null && echo open || echo closed`)).stdout.trim();
    expect([await probe('api1', 'redis1', 6379), await probe('bastion', 'redis1', 6379)]).toEqual(['open', 'closed']);
    expect([await probe('api1', 'mon1', 26379), await probe('bastion', 'mon1', 26379)]).toEqual(['open', 'closed']);
    expect([await probe('mon1', 'redis1', 9121), await probe('api1', 'redis1', 9121)]).toEqual(['open', 'closed']);
  });

  it('kernel: vm.overcommit_memory persisted; the live value reported skipped in a container, with the reason', async () => {
    expect((await fleet.exec('redis1', 'cat /etc/sysctl.d/60-redis.conf')).stdout).toMatch(/^vm.overcommit_memory = 1$/m);
    const skipped = taskResults(first, 'redis1').find((e) => e.task.includes('live vm.overcommit_memory'))!;
    expect(skipped.status).toBe('skipped');
    expect(skipped.reason).toMatch(/container/);
  });

  it('a second apply changes nothing; plan --detailed-exitcode after it: 0', async () => {
    const second = await apply();
    expect(second.code).toBe(0);
    expect(changedTasks(second)).toEqual([]);
    const plan = await infra(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--detailed-exitcode', '--json'], { env, timeoutMs: 300_000 });
    expect(plan.code).toBe(0);
  }, 600_000);
});

describe('redis-sentinel: failover drills', () => {
  it('SENTINEL FAILOVER promotes redis2; a re-apply changes nothing, keeps it master and warns that the inventory disagrees', async () => {
    expect((await sentinel('mon1', 'SENTINEL FAILOVER main')).stdout.trim()).toBe('OK');
    await waitFor('redis2 named master', async () => ((await sentinel('mon1', 'SENTINEL get-master-addr-by-name main')).stdout.startsWith(`${ip.redis2}\n`) ? true : undefined), 30_000);
    // Sentinel turns the old master into a replica a few seconds after the switch.
    await waitFor('redis1 replicating redis2', async () => {
      const i = await info('redis1');
      return /^role:slave\r?$/m.test(i) && /^master_link_status:up\r?$/m.test(i) ? true : undefined;
    }, 60_000);

    const again = await apply(ROLE_ONLY);
    expect(again.code).toBe(0);
    expect(changedTasks(again)).toEqual([]);
    expect(await info('redis2')).toMatch(/^role:master\r?$/m);
    const i1 = await info('redis1');
    expect(i1).toMatch(/^role:slave\r?$/m);
    expect(i1).toMatch(new RegExp(`^master_host:${ip.redis2.replace(/\./g, '\\.')}\\r?$`, 'm'));
    // Redis persisted the new topology itself (CONFIG REWRITE), and the role left it alone.
    expect((await fleet.exec('redis1', 'grep ^replicaof /etc/redis/redis.conf')).stdout.trim()).toBe(`replicaof ${ip.redis2} 6379`);
    const warned = taskResults(again).filter((e) => e.module === 'redis.replication');
    expect(warned.map((e) => e.status)).toEqual(['ok', 'ok']);
    for (const e of warned) expect(e.warning).toMatch(/Sentinel names .* master of "main", the inventory names redis1: following Sentinel/);

    const plan = await infra(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--detailed-exitcode', ...ROLE_ONLY], { env, timeoutMs: 300_000 });
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/warning: Sentinel names .* the inventory names redis1/);
  }, 600_000);

  it('killing the master container: the Sentinels elect redis1 within down-after + failover time; a Sentinel-aware client writes on', async () => {
    const masterOf = async (h: string) => (await sentinel(h, 'SENTINEL get-master-addr-by-name main')).stdout.split('\n')[0];
    expect(await masterOf('mon1')).toBe(ip.redis2);
    const t0 = Date.now();
    await fleet.stop('redis2');
    await waitFor('a new master', async () => ((await masterOf('mon1')) === ip.redis1 ? true : undefined), DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS);
    const electedMs = Date.now() - t0;
    console.log(`redis-sentinel: master killed → redis1 elected in ${electedMs} ms (down-after ${DOWN_AFTER_MS} ms)`);
    expect(electedMs).toBeLessThan(DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS);
    expect(await masterOf('redis1')).toBe(ip.redis1);

    // The client asks a Sentinel for the master, then writes there.
    const write = await fleet.exec(
      'api1',
      `m=$(redis-cli -h ${ip.mon1} -p 26379 SENTINEL get-master-addr-by-name main | head -1) && REDISCLI_AUTH=${q(APP_PASSWORD)} redis-cli -e --user app -h "$m" SET after-failover yes 2>&1`,
    );
    expect(write.stdout.trim()).toBe('OK');
    expect((await asApp('api1', ip.redis1, 'GET greeting')).stdout.trim()).toBe('hello');

    // The living hosts re-converge without a change (redis1 is the master again, as the inventory says).
    const again = await apply([...ROLE_ONLY, '--limit', 'all:!redis2']);
    expect(again.code).toBe(0);
    expect(changedTasks(again)).toEqual([]);
  }, 600_000);

  it('TLS on the living members (certificates from the internal CA): the plaintext port closes, clients, Sentinel and the exporter speak TLS; re-apply: 0 changed', async () => {
    // The inventory's internal CA: the role has each member's certificate issued by it.
    const init = await infra(['pki', 'init', '-i', fleet.inventoryDir], { env });
    expect(init.code, init.stderr).toBe(0);
    const ca = await readFile(join(fleet.inventoryDir, 'pki/ca.crt'), 'utf8');
    expect((await fleet.exec('api1', `install -d /etc/ssl/redis && printf '%s' ${q(ca)} > /etc/ssl/redis/ca.crt`)).code).toBe(0);

    const tlsOn = [...ROLE_ONLY, '--limit', 'all:!redis2', '-e', '{"redis_tls": {"enabled": true}}'];
    const on = await apply([...tlsOn, '--verify']);
    expect(on.events.filter((e) => e.type === 'task.result' && e.status === 'failed')).toEqual([]);
    expect(on.code).toBe(0);

    const tls = '--tls --cacert /etc/ssl/redis/ca.crt';
    expect((await asApp('api1', ip.redis1, `${tls} PING`)).stdout.trim()).toBe('PONG');
    expect((await asApp('api1', ip.redis1, 'PING')).code).not.toBe(0);
    expect((await fleet.exec('api1', `redis-cli ${tls} -h ${ip.mon1} -p 26379 SENTINEL get-master-addr-by-name main`)).stdout.split('\n')[0]).toBe(ip.redis1);
    const metrics = (await fleet.exec('mon1', `curl -sf http://${ip.redis1}:9121/metrics`)).stdout;
    expect(metrics).toMatch(/^redis_up 1$/m);
    const again = await apply(tlsOn);
    expect(again.code).toBe(0);
    expect(changedTasks(again)).toEqual([]);
  }, 600_000);
});
