/**
 * Redis disaster recovery live (issue 18): a Redis master + replica with two Sentinels (role
 * redis-sentinel) backed up by role restic to backup1, converged once. Then
 *   - `infra drill redis-failover`: a load marker writing through the Sentinel's master,
 *     SENTINEL FAILOVER, RTO until the new master takes writes, RPO from the acknowledged
 *     writes it holds afterwards; the audit trail keeps the steps and the measure;
 *   - playbooks/dr/redis-restore.yaml in the cluster: every key lost (FLUSHALL replicates),
 *     restored on the current master with the Sentinels paused; the replica resyncs it, the
 *     Sentinels come back and the master stays where it was.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startFleet, type Fleet } from './fleet.js';
import { vaultEncrypt, infra, REPO, type CliResult, cliWorkspace, drillVerdicts } from './helpers/cli.js';
import { waitFor } from './helpers/wait.js';

const PLAYBOOK = join(REPO, 'test/fixtures/playbooks/redis/role-only.yaml');
const REDIS_RESTORE = join(REPO, 'playbooks/dr/redis-restore.yaml');
const RESTIC_PLAYS = `
- name: backup clients
  hosts: redis
  roles: [restic]
- name: backup repositories
  hosts: backup
  roles: [restic]
`;
const PASSWORDS = {
  redis_admin_password: `admin-${randomBytes(9).toString('hex')}`,
  redis_replication_password: `repl-${randomBytes(9).toString('hex')}`,
  redis_sentinel_password: `sentinel-${randomBytes(9).toString('hex')}`,
  redis_monitoring_password: `monitoring-${randomBytes(9).toString('hex')}`,
};

let fleet: Fleet;
let work: string;
let env: Record<string, string>;
let converge: CliResult;
const started = Date.now();
const ip: Record<string, string> = {};

const masterAddr = async (host: string) => (await fleet.exec(host, 'redis-cli -p 26379 SENTINEL get-master-addr-by-name main')).stdout.split('\n')[0];

beforeAll(async () => {
  let passwordFile: string;
  ({ work, passwordFile, env } = await cliWorkspace('drill-redis', 'drill test vault'));
  fleet = await startFleet({
    targets: [
      { name: 'redis1', groups: ['redis', 'redis_master', 'sentinel'] },
      { name: 'redis2', groups: ['redis', 'redis_replica', 'sentinel'] },
      { name: 'backup1', groups: ['backup'] },
    ],
  });
  for (const t of fleet.targets) ip[t.name] = t.ip;
  const vaulted = await Promise.all(Object.entries(PASSWORDS).map(async ([k, v]) => `${k}: ${await vaultEncrypt(k, v, passwordFile)}`));
  const dir = join(fleet.inventoryDir, 'group_vars');
  await mkdir(dir, { recursive: true });
  const restic = `restic_clients: redis\nrestic_password: ${await vaultEncrypt('restic_password', `restic-${randomBytes(9).toString('hex')}`, passwordFile)}`;
  await writeFile(join(dir, 'all.yaml'), `redis_sentinel_quorum: 2\nredis_sentinel_down_after_ms: 2000\nredis_sentinel_failover_timeout_ms: 10000\n${vaulted.join('\n')}\n${restic}\n`);
  const playbook = join(work, 'site.yaml');
  await writeFile(playbook, (await readFile(PLAYBOOK, 'utf8')) + RESTIC_PLAYS);
  converge = await infra(['apply', playbook, '-i', fleet.inventoryDir, '--json'], { env, timeoutMs: 600_000 });
}, 900_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
  console.log(`redis-dr.test.ts: ${((Date.now() - started) / 1000).toFixed(1)} s (converge ${((converge?.durationMs ?? 0) / 1000).toFixed(1)} s)`);
});

const admin = (host: string, args: string) => fleet.exec(host, `REDISCLI_AUTH='${PASSWORDS.redis_admin_password}' redis-cli --no-auth-warning --user admin ${args}`);

describe('redis disaster recovery', () => {
  it('the cluster converged: redis1 is the master', async () => {
    expect(converge.code, converge.stdout.slice(-3000) + converge.stderr).toBe(0);
    expect(await masterAddr('redis2')).toBe(ip.redis1);
  });

  it('measures RTO and RPO against the objectives; the master moved; no password shows; the drill leaves no key', async () => {
    const drill = await infra(['drill', 'redis-failover', '-i', fleet.inventoryDir], { env, timeoutMs: 600_000 });
    const out = drill.stdout + drill.stderr;
    expect(drill.code, out).toBe(0);
    const { rto, rpo } = drillVerdicts('redis-failover', drill.stderr);
    expect(rto, out).not.toBeNull();
    expect(rpo, out).not.toBeNull();
    expect(Number(rpo![4])).toBeGreaterThan(10);
    console.log(`redis failover drill: ${rto![0]}; ${rpo![0]}`);
    expect(drill.stderr).toMatch(new RegExp(`the master is now ${ip.redis2.replace(/\./g, '\\.')} \\(was ${ip.redis1.replace(/\./g, '\\.')}\\)`));
    expect(await masterAddr('redis1')).toBe(ip.redis2);
    for (const pw of Object.values(PASSWORDS)) expect(out).not.toContain(pw);

    const keys = await admin('redis2', `--scan --pattern 'infra-drill:*'`);
    expect(keys.stdout.trim()).toBe('');
    expect((await fleet.exec('redis1', 'ls /run/infra-drill 2>/dev/null | wc -l')).stdout.trim()).toBe('0');

    const record = JSON.parse((await fleet.exec('redis1', 'tail -n 1 /var/log/infra/audit.jsonl')).stdout.trim());
    expect(record.mode).toBe('drill');
    expect(record.hosts.redis1.changedTasks.join('\n')).toMatch(/SENTINEL FAILOVER main/);
  }, 600_000);

  it('redis-restore on the current master: every key back on master and replica, the Sentinels back, the master unchanged', async () => {
    // After the drill redis2 is the master: the data, backed up there, then lost everywhere.
    expect(await masterAddr('redis1')).toBe(ip.redis2);
    const value = randomBytes(12).toString('hex');
    expect((await admin('redis2', `SET dr:key ${value}`)).stdout.trim()).toBe('OK');
    const backup = await fleet.exec('redis2', 'systemctl start infra-backup.service; rc=$?; journalctl -u infra-backup.service -n 30 --no-pager; exit $rc');
    expect(backup.code, backup.stdout).toBe(0);
    expect((await admin('redis2', 'FLUSHALL')).stdout.trim()).toBe('OK');
    await waitFor('the replica to lose the key too', async () => (await admin('redis1', 'EXISTS dr:key')).stdout.trim() === '0', 60_000);

    const restore = await infra(['apply', REDIS_RESTORE, '-i', fleet.inventoryDir, '-e', 'redis_restore_host=redis2'], { env, timeoutMs: 600_000 });
    expect(restore.code, restore.stdout + restore.stderr).toBe(0);
    expect((await admin('redis2', 'GET dr:key')).stdout.trim()).toBe(value);
    await waitFor('the replica to resync the restored data', async () => (await admin('redis1', 'GET dr:key')).stdout.trim() === value, 60_000);
    for (const h of ['redis1', 'redis2']) expect((await fleet.exec(h, 'systemctl is-active redis-sentinel')).stdout.trim()).toBe('active');
    await waitFor('the Sentinels to agree again', async () => /^OK/.test((await fleet.exec('redis1', 'redis-cli -p 26379 SENTINEL ckquorum main')).stdout), 60_000);
    expect(await masterAddr('redis1')).toBe(ip.redis2);
  }, 600_000);
});

