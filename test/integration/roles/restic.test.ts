/**
 * Issue 18, the restic role end to end on one fleet: backup1 (the repository host) and app1
 * (a client). Converge once (hardening + the role), then prove what the issue asks: a backup
 * over SFTP as app1's own chrooted user, a file deleted from /etc restored byte-exact (scratch
 * and in place, through playbooks/dr/files-restore.yaml), retention, the daily check and its
 * metrics — including a corrupted repository making the check fail. Then idempotence.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startFleet, type Fleet } from '../fleet.js';
import { vaultEncrypt, infra, REPO, type CliResult, cliWorkspace } from '../helpers/cli.js';

const PLAYBOOK = join(REPO, 'test/fixtures/playbooks/restic/site.yaml');
const FILES_RESTORE = join(REPO, 'playbooks/dr/files-restore.yaml');
const REDIS_RESTORE = join(REPO, 'playbooks/dr/redis-restore.yaml');
const MASTER = `restic-master-${randomBytes(12).toString('hex')}`;
const PROBE = '/etc/infra-restic-probe.bin';

let fleet: Fleet;
let work: string;
let env: Record<string, string>;
let first: CliResult;
let fresh: CliResult;
const started = Date.now();
const timings: Record<string, number> = {};

/** The lab's opening of backup1's SSH port for the restic clients (the others name groups this fleet lacks). */
const labResticOpening = async (): Promise<Record<string, unknown>> => {
  const vars = parse(await readFile(join(REPO, 'inventories/lab/group_vars/backup.yaml'), 'utf8')) as { firewall: { allow: { port?: number }[] } };
  const allow = vars.firewall.allow.filter((r) => r.port === 22);
  expect(allow).toHaveLength(1);
  return { firewall: { allow } };
};

const apply = (playbook: string, args: string[] = []) => infra(['apply', playbook, '-i', fleet.inventoryDir, '--json', ...args], { env, timeoutMs: 900_000 });
/** The tasks that changed something (for a DR playbook: the commands that ran). */
const ran = (r: CliResult) => r.events.flatMap((e) => (e.type === 'task.result' && e.status === 'changed' ? [e.task] : []));
const failures = (r: CliResult) => r.events.filter((e) => e.type === 'task.result' && e.status === 'failed');
const sh = (host: string, cmd: string): Promise<string> => fleet.sh(host, cmd);
/** Runs a oneshot unit and says whether it succeeded (its journal when not). */
const runUnit = async (host: string, unit: string) => {
  const r = await fleet.exec(host, `systemctl start ${unit}; rc=$?; journalctl -u ${unit} -n 40 --no-pager; exit $rc`);
  return { ok: r.code === 0, log: r.stdout + r.stderr };
};
const metric = async (host: string, file: string, name: string): Promise<number | undefined> => {
  const text = (await fleet.exec(host, `cat /var/lib/prometheus/node-exporter/${file}`)).stdout;
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};

beforeAll(async () => {
  let passwordFile: string;
  ({ work, passwordFile, env } = await cliWorkspace('restic', 'restic test vault'));
  fleet = await startFleet({
    baseline: true, // the hardening role's packages already there (hardening.test.ts installs them)
    targets: [
      { name: 'backup1', groups: ['backup'] },
      { name: 'app1', groups: ['app', 'redis'] },
    ],
    // redis-restore pauses the Sentinels: this fleet has none (an empty group).
    groupVars: { sentinel: {} },
  });
  const dir = join(fleet.inventoryDir, 'group_vars');
  await mkdir(dir, { recursive: true });
  const all = { restic_clients: 'app', restic_check_read_data_subset: '100%' };
  await writeFile(join(dir, 'all.yaml'), `${stringify(all)}restic_password: ${await vaultEncrypt('restic_password', MASTER, passwordFile)}\n`);
  await writeFile(join(dir, 'backup.yaml'), JSON.stringify(await labResticOpening()));
  // A plan on fresh hosts (nothing installed, no client key yet) must work: check mode only reads.
  fresh = await infra(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--json'], { env, timeoutMs: 600_000 });
  first = await apply(PLAYBOOK, ['--verify']);
  // A standalone Redis on app1 for redis-restore (the redis role's own test proves the cluster).
  const install = 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=120 redis-server >/dev/null';
  const redis = await fleet.exec('app1', `${install} 2>&1 || (apt-get update -q >/dev/null 2>&1 && ${install})`);
  expect(redis.code, redis.stdout + redis.stderr).toBe(0);
  timings.firstApply = first.durationMs;
}, 900_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
  console.log(`restic.test.ts: ${((Date.now() - started) / 1000).toFixed(1)} s; ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')}`);
});

describe('restic: converge once, then back up and restore for real', () => {
  it('a plan before anything was applied lists the changes and fails nothing (the repository host waits for the client\'s key)', () => {
    expect(failures(fresh), fresh.stdout.slice(-2000)).toEqual([]);
    expect(fresh.code, fresh.stderr).toBe(0);
    const pending = fresh.events.filter((e) => e.type === 'task.result' && e.status === 'changed' && e.module === 'restic.peerKey');
    expect(pending.map((e) => (e.type === 'task.result' ? e.host : ''))).toEqual(['app1', 'backup1']);
  });

  it('the first apply converges both hosts (--verify: each change checked again)', () => {
    expect(failures(first), first.stderr).toEqual([]);
    expect(first.code).toBe(0);
    expect(first.recap.map((r) => r.host).sort()).toEqual(['app1', 'backup1']);
  });

  it('the master secret and the derived repository password never show in the output', async () => {
    const derived = (await sh('app1', 'cat /etc/restic/password')).trim();
    expect(derived.length).toBeGreaterThanOrEqual(40);
    expect(derived).not.toContain(MASTER);
    for (const s of [MASTER, derived]) expect(first.stdout + first.stderr).not.toContain(s);
    expect(await sh('app1', 'stat -c "%a %U" /etc/restic /etc/restic/password /etc/restic/id_ed25519')).toBe('700 root\n600 root\n600 root\n');
  });

  it('backup1: app1 has its own chrooted SFTP-only user; the Match block does not leak to other users', async () => {
    const client = await sh('backup1', 'sshd -T -C user=restic-app1,host=app1,addr=10.0.0.9');
    expect(client).toMatch(/^chrootdirectory \/srv\/restic\/%u$/m);
    expect(client).toMatch(/^forcecommand internal-sftp$/m);
    expect(client).toMatch(/^authorizedkeysfile \/etc\/ssh\/restic-keys\/%u$/m);
    const admin = await sh('backup1', 'sshd -T -C user=admin,host=x,addr=10.0.0.9');
    expect(admin).toMatch(/^forcecommand none$/m);
    expect(admin).toMatch(/^chrootdirectory none$/m);
    // The key backup1 trusts is the one app1 made, with every forwarding restricted.
    const pub = (await sh('app1', 'cut -d" " -f1,2 /etc/restic/id_ed25519.pub')).trim();
    expect(await sh('backup1', 'cat /etc/ssh/restic-keys/restic-app1')).toBe(`restrict ${pub}\n`);
  });

  it('app1 reaches backup1 through the firewall opening, gets SFTP only, and sees its repository only', async () => {
    const shell = await fleet.exec('app1', 'ssh -F /etc/restic/ssh_config restic-repository id 2>&1');
    expect(shell.stdout).toMatch(/sftp connections only/);
    expect(shell.stdout).not.toMatch(/uid=/);
    const ls = await sh('app1', 'echo "ls -a /" | sftp -q -b - -F /etc/restic/ssh_config restic-repository');
    expect(ls.split(/\s+/).filter((w) => w && !w.startsWith('sftp>') && w !== 'ls' && w !== '-a' && w !== '/').sort()).toEqual(['/.', '/..', '/repo'].sort());
    // The host key is pinned: a changed key on backup1 would be refused, not accepted.
    expect(await sh('app1', 'cut -d" " -f1 /etc/restic/known_hosts')).toBe('restic-repository\n');
  });

  it('the timers are set in the window, Persistent', async () => {
    const timers = await sh('app1', 'systemctl show -p TimersCalendar -p Persistent infra-backup.timer infra-backup-check.timer');
    expect(timers).toMatch(/OnCalendar=\*-\*-\* 02:15:00/);
    expect(timers).toMatch(/OnCalendar=\*-\*-\* 03:30:00/);
    expect(timers.match(/^Persistent=yes$/gm)).toHaveLength(2);
    expect(await sh('app1', 'systemctl is-enabled infra-backup.timer infra-backup-check.timer')).toBe('enabled\nenabled\n');
    // Before any backup ran: the role's own metric says one is expected (the "never ran" alerts read it).
    expect(await metric('app1', 'restic-configured.prom', 'restic_backup_configured')).toBe(1);
  });

  it('a scheduled backup (the unit the timer starts) makes the repository and a snapshot, and reports it', async () => {
    await sh('app1', `head -c 65536 /dev/urandom > ${PROBE} && chmod 0640 ${PROBE}`);
    const t0 = Date.now();
    const run = await runUnit('app1', 'infra-backup.service');
    timings.firstBackup = Date.now() - t0;
    expect(run.ok, run.log).toBe(true);
    expect(run.log).not.toMatch(/Authorized access only/); // backup1's login banner is not shown to restic
    expect(await metric('app1', 'restic-backup.prom', 'restic_backup_success')).toBe(1);
    expect(await metric('app1', 'restic-backup.prom', 'restic_snapshots')).toBe(1);
    expect(await metric('app1', 'restic-backup.prom', 'restic_backup_last_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);
    // The repository is app1's, encrypted: config, keys, data, on backup1.
    expect(await sh('backup1', 'stat -c "%U %a" /srv/restic/restic-app1/repo; ls /srv/restic/restic-app1/repo')).toMatch(/^restic-app1 700\n(.|\n)*config(.|\n)*data(.|\n)*keys/);
    expect((await fleet.exec('backup1', 'grep -rl "infra-restic-probe" /srv/restic/restic-app1/repo')).stdout).toBe('');
  }, 300_000);

  it('a file deleted from /etc comes back byte-exact: files-restore into a scratch directory, then in place', async () => {
    const sum = await sh('app1', `sha256sum < ${PROBE}`);
    const mode = await sh('app1', `stat -c %a ${PROBE}`);
    await sh('app1', `rm ${PROBE}`);

    const t0 = Date.now();
    const scratch = await apply(FILES_RESTORE, ['-l', 'app1', '-e', `restore_path=${PROBE}`]);
    timings.scratchRestore = Date.now() - t0;
    expect(scratch.code, scratch.stderr).toBe(0);
    expect(ran(scratch), scratch.stdout).toEqual(['restic restore (scratch directory)']);
    expect((await fleet.exec('app1', `test -e ${PROBE}`)).code).not.toBe(0);
    // (dash expands no glob in a redirection: cat it)
    expect(await sh('app1', `cat /var/tmp/infra-restore/*${PROBE} | sha256sum`)).toBe(sum);

    const inPlace = await apply(FILES_RESTORE, ['-l', 'app1', '-e', `restore_path=${PROBE}`, '-e', 'restore_mode=in-place']);
    expect(inPlace.code, inPlace.stderr).toBe(0);
    expect(ran(inPlace), inPlace.stdout).toEqual(['restic restore (in place)']);
    expect(await sh('app1', `sha256sum < ${PROBE}`)).toBe(sum);
    expect(await sh('app1', `stat -c %a ${PROBE}`)).toBe(mode);
  }, 300_000);

  it('restore_from a time picks the snapshot made at or before it; a time before every snapshot fails', async () => {
    await sh('app1', `echo second > /etc/infra-restic-second`);
    const between = (await sh('app1', 'date -u "+%Y-%m-%d %H:%M:%S UTC"')).trim();
    await new Promise((r) => setTimeout(r, 1100));
    expect((await runUnit('app1', 'infra-backup.service')).ok).toBe(true);
    expect(await metric('app1', 'restic-backup.prom', 'restic_snapshots')).toBe(1); // keep-daily 30: one per day
    // (forget --keep-daily keeps the newest snapshot of each day: the first one is gone.)
    const byTime = await fleet.exec('app1', `infra-restore --from ${JSON.stringify(between)} --include /etc/infra-restic-second --target /var/tmp/t1`);
    expect(byTime.code).not.toBe(0);
    expect(byTime.stderr).toMatch(/no snapshot at or before/);
    const latest = await sh('app1', 'infra-restore --from latest --include /etc/infra-restic-second --target /var/tmp/t2');
    expect(latest).toMatch(/^restored [0-9a-f]{8} \S+ \/etc\/infra-restic-second -> \/var\/tmp\/t2$/m);
    expect(await sh('app1', 'cat /var/tmp/t2/etc/infra-restic-second')).toBe('second\n');
  }, 300_000);

  it('redis-restore: keys lost after the backup come back; the data Redis had is kept aside', async () => {
    const value = randomBytes(16).toString('hex');
    await sh('app1', `redis-cli SET drill:key ${value} && redis-cli SAVE`);
    expect((await runUnit('app1', 'infra-backup.service')).ok).toBe(true);
    expect(await sh('app1', 'redis-cli FLUSHALL && redis-cli SAVE && redis-cli DBSIZE')).toBe('OK\nOK\n0\n');

    const t0 = Date.now();
    const restore = await apply(REDIS_RESTORE, ['-e', 'redis_restore_host=app1']);
    timings.redisRestore = Date.now() - t0;
    expect(restore.code, restore.stdout + restore.stderr).toBe(0);
    expect(await sh('app1', 'redis-cli GET drill:key')).toBe(`${value}\n`);
    expect(await sh('app1', 'systemctl is-active redis-server')).toBe('active\n');
    expect(await sh('app1', 'ls -d /var/lib/redis.before-restore-* | wc -l')).toBe('1\n');
  }, 300_000);

  it('redis-restore without redis_restore_host stops before touching anything', async () => {
    const r = await apply(REDIS_RESTORE);
    expect(r.code).not.toBe(0);
    expect(await sh('app1', 'ls -d /var/lib/redis.before-restore-* | wc -l')).toBe('1\n');
  }, 300_000);

  it('infra drill restore: backup under load, delete, restore; RTO and RPO measured and met; the audit trail keeps it', async () => {
    const t0 = Date.now();
    const drill = await infra(['drill', 'restore', '-i', fleet.inventoryDir, '-l', 'app1'], { env, timeoutMs: 600_000 });
    timings.restoreDrill = Date.now() - t0;
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    const rto = /drill restore: RTO (\S+) (ms|s|min) \(target 60\.0 min\): met/.exec(drill.stderr);
    const rpo = /drill restore: RPO (\S+) (ms|s), (\d+) of (\d+) acknowledged writes lost \(target 5\.0 min\): met/.exec(drill.stderr);
    expect(rto, drill.stderr).not.toBeNull();
    expect(rpo, drill.stderr).not.toBeNull();
    // The writes of the last ~2 s (after the backup) are lost, the earlier ones came back.
    const [lost, acked] = [Number(rpo![3]), Number(rpo![4])];
    expect(lost).toBeGreaterThanOrEqual(5);
    expect(lost).toBeLessThan(acked);
    expect(await sh('app1', 'ls /etc/infra-drill 2>&1 || true')).toMatch(/No such file/);
    const record = JSON.parse((await sh('app1', 'tail -n 1 /var/log/infra/audit.jsonl')).trim());
    expect(record.mode).toBe('drill');
    expect(record.hosts.app1.changedTasks.join('\n')).toMatch(/scheduled backup under load/);
    console.log(`restore drill: ${rto![0]}; ${rpo![0]}`);
  }, 600_000);

  it('infra drill restore exits 1 when an objective is missed (RTO target 1 ms)', async () => {
    const file = join(fleet.inventoryDir, 'group_vars', 'all.yaml');
    const before = await readFile(file, 'utf8');
    await writeFile(file, `${before}dr_objectives: { rto: 1ms, rpo: 5m }\n`);
    try {
      const drill = await infra(['drill', 'restore', '-i', fleet.inventoryDir, '-l', 'app1'], { env, timeoutMs: 600_000 });
      expect(drill.code).toBe(1);
      expect(drill.stderr).toMatch(/RTO \S+ \S+ \(target 1 ms\): MISSED/);
    } finally {
      await writeFile(file, before);
    }
  }, 600_000);

  it('infra drill: an unknown drill is an input error (exit 2) naming the drills', async () => {
    const unknown = await infra(['drill', 'nope', '-i', fleet.inventoryDir], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/drills: postgres-failover, redis-failover, restore/);
  });

  it('the daily check passes and says so; a corrupted pack on backup1 makes it fail, and the last success stays', async () => {
    const ok = await runUnit('app1', 'infra-backup-check.service');
    expect(ok.ok, ok.log).toBe(true);
    expect(await metric('app1', 'restic-check.prom', 'restic_check_success')).toBe(1);
    const lastSuccess = await metric('app1', 'restic-check.prom', 'restic_check_last_success_timestamp_seconds');
    expect(lastSuccess).toBeGreaterThan(0);

    // Flip bytes in the middle of the largest data pack (what bit rot or a bad disk does).
    await sh('backup1', 'f=$(find /srv/restic/restic-app1/repo/data -type f -printf "%s %p\\n" | sort -n | tail -n 1 | cut -d" " -f2); printf "\\377\\377\\377\\377" | dd of="$f" bs=1 seek=2000 conv=notrunc status=none');
    const bad = await runUnit('app1', 'infra-backup-check.service');
    expect(bad.ok).toBe(false);
    expect(await metric('app1', 'restic-check.prom', 'restic_check_success')).toBe(0);
    expect(await metric('app1', 'restic-check.prom', 'restic_check_last_success_timestamp_seconds')).toBe(lastSuccess);
  }, 300_000);
});

describe('restic: idempotence', () => {
  it('a second apply changes nothing', async () => {
    const again = await apply(PLAYBOOK);
    expect(failures(again)).toEqual([]);
    expect(again.changed, again.events.filter((e) => e.type === 'task.result' && e.status === 'changed').map((e) => JSON.stringify(e)).join('\n')).toBe(0);
  }, 300_000);

  it('plan --detailed-exitcode after it exits 0', async () => {
    const plan = await infra(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--detailed-exitcode'], { env, timeoutMs: 600_000 });
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
  }, 300_000);
});
