/**
 * Role postgres, live through the bastion (issue 12, ROLES.md "postgres"): one fleet —
 * db1 primary, db2 replica, backup1 (pgBackRest repository), api1 (the allowed client group),
 * db3 (spare, joins as a second replica in phase 2). Hardening runs too: the firewall
 * openings of the group_vars are proven, not assumed.
 *
 * Converge once → the service used as production uses it (replication, read-only replica,
 * TLS verify-full, pgbouncer, exporter, pgBackRest check/info/verify, a PITR drill) →
 * second apply 0 changed, plan exit 0 → a third replica joins without restarting the
 * others → a manual promotion is refused on re-apply, and the explicit rebuild path clones
 * the promoted replica again.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startFleet, type Fleet } from '../fleet.js';
import { infra, taskResults, REPO, type CliResult } from '../helpers/cli.js';
import { Keyring, encryptValue } from '../../../src/secrets/vault.js';

const PLAYBOOK = join(REPO, 'test/fixtures/playbooks/postgres/site.yaml');
const VAULT_PASSWORD = 'postgres role test vault password';
const PASSWORDS = { replication: 'repl-Secret-1:x', app: "app-Secret-2'q", cipher: 'cipher-Secret-3-long-passphrase' };
const ROTATED = 'app-Secret-rotated-4';

let fleet: Fleet;
let work: string;
let env: Record<string, string>;
let first: CliResult;
const started = Date.now();
const ipOf = (h: string) => fleet.targets.find((t) => t.name === h)!.ip;
const keyring = new Keyring({}, VAULT_PASSWORD);
const vault = (keyPath: string, value: string) => `!vault ${JSON.stringify(encryptValue(value, keyPath, keyring))}`;

/** A root shell on a host, trimmed; throws with the output when the command fails. */
const sh = async (host: string, cmd: string): Promise<string> => (await fleet.sh(host, cmd)).trim();
/** psql as postgres on a database host. */
const q = (host: string, sql: string, db = 'postgres') => sh(host, `cd / && runuser -u postgres -- psql -X -A -t -v ON_ERROR_STOP=1 -d ${db} -c "${sql.replace(/"/g, '\\"')}"`);

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    try {
      last = await f();
      if (ok(last)) return last;
    } catch (e) {
      if (Date.now() > end) throw e;
    }
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(last)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** hosts.yaml with db3 in the replica group (phase 2). */
async function addThirdReplica(): Promise<void> {
  const file = join(fleet.inventoryDir, 'hosts.yaml');
  const inv = parse(await readFile(file, 'utf8'));
  inv.hosts.db3.groups = ['postgres', 'postgres_replica'];
  await writeFile(file, stringify(inv));
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'infra-postgres-'));
  await writeFile(join(work, 'vault-pass'), `${VAULT_PASSWORD}\n`, { mode: 0o600 });
  env = { INFRA_VAULT_PASSWORD_FILE: join(work, 'vault-pass'), XDG_STATE_HOME: join(work, 'state') };
  const lab = (g: string) => readFile(join(REPO, 'inventories/lab/group_vars', `${g}.yaml`), 'utf8').then((t) => parse(t, { customTags: [{ tag: '!vault', resolve: (s: string) => s }] }));
  fleet = await startFleet({
    baseline: true, // the hardening role's packages already there (hardening.test.ts installs them)
    targets: [
      { name: 'db1', groups: ['postgres', 'postgres_primary'] },
      { name: 'db2', groups: ['postgres', 'postgres_replica'] },
      { name: 'db3', groups: ['spare'] },
      { name: 'backup1', groups: ['backup'] },
      { name: 'api1', groups: ['api'] },
    ],
    // The lab's own firewall openings (what the test proves); an empty monitoring group.
    groupVars: {
      postgres: { firewall: (await lab('postgres')).firewall },
      backup: { firewall: (await lab('backup')).firewall },
      monitoring: {},
      postgres_primary: {},
      postgres_replica: {},
    },
  });
  // Certificates from the inventory's internal CA (tls.certificate), as in the lab.
  const pki = await infra(['pki', 'init', '-i', fleet.inventoryDir, '--name', 'postgres test CA'], { env });
  expect(pki.code, pki.stderr).toBe(0);
  const ca = await readFile(join(fleet.inventoryDir, 'pki/ca.crt'), 'utf8');
  const gv = (f: string) => join(fleet.inventoryDir, 'group_vars', f);
  await writeFile(gv('all.yaml'), stringify({ admin_users: [{ name: 'ops', keys: [] }] }));
  await writeFile(
    gv('postgres.yaml'),
    [
      stringify({ firewall: (await lab('postgres')).firewall }),
      `postgres_replication_password: ${vault('postgres_replication_password', PASSWORDS.replication)}`,
      'postgres_users:',
      '  - name: app',
      `    password: ${vault('postgres_users.0.password', PASSWORDS.app)}`,
      '  - name: app_ro',
      '    login: false',
      'postgres_databases:',
      '  - { name: app, owner: app }',
      'postgres_grants:',
      '  - { role: app_ro, database: app, on: database, privileges: [CONNECT] }',
      '  - { role: app_ro, database: app, on: schema, schema: public, privileges: [USAGE] }',
      '  - { role: app_ro, database: app, on: tables, schema: public, privileges: [SELECT] }',
      'postgres_hba_allow:',
      '  - { from: [api], databases: [app], users: [app, app_ro] }',
      '',
    ].join('\n'),
  );
  await writeFile(gv('backup.yaml'), [stringify({ firewall: (await lab('backup')).firewall }), 'postgres_backup:', `  cipher_pass: ${vault('postgres_backup.cipher_pass', PASSWORDS.cipher)}`, ''].join('\n'));
  // The client side of the proofs (psql and the CA on the api host, which no play touches)
  // is installed while the fleet converges.
  const client = sh('api1', 'apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-client-15 >/dev/null');
  first = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json', '--verify'], { env, timeoutMs: 900_000 });
  await client;
  await sh('api1', `printf '%s' '${ca}' > /tmp/ca.crt`);
}, 1_200_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
  console.log(`postgres.test.ts: ${Math.round((Date.now() - started) / 1000)} s`);
}, 3_600_000);

const failures = (r: CliResult) => r.events.filter((e) => (e.type === 'task.result' && e.status === 'failed') || e.type === 'host.failed');
const changedOn = (r: CliResult, host: string) => taskResults(r, host).filter((e) => e.status === 'changed').map((e) => e.task);
/** libpq connection string from api1 with the CA: verify-full. */
const fromApi = (host: string, port: number, user: string) => `host=${ipOf(host)} port=${port} dbname=app user=${user} sslmode=verify-full sslrootcert=/tmp/ca.crt connect_timeout=5`;
const apiPsql = (conninfo: string, sql: string, password = PASSWORDS.app) =>
  fleet.exec('api1', `PGPASSWORD='${password.replace(/'/g, "'\\''")}' psql -X -A -t -v ON_ERROR_STOP=1 "${conninfo}" -c "${sql}"`);

describe('postgres: converge', () => {
  it('the first apply succeeds on every host, secrets never shown', () => {
    expect(failures(first)).toEqual([]);
    expect(first.code, first.stderr).toBe(0);
    const out = first.stdout + first.stderr;
    for (const pw of Object.values(PASSWORDS)) expect(out).not.toContain(pw);
    expect(out).not.toMatch(/SCRAM-SHA-256\$/);
  });

  it('the plan names settings that need a restart (postmaster context) and those that reload', () => {
    const conf = taskResults(first, 'db1').find((e) => e.module === 'postgres.config')!;
    // First start: the settings take effect when the server starts (no restart needed yet).
    expect(conf.status).toBe('changed');
    expect(JSON.stringify(conf.changes)).toMatch(/takes effect when the server starts/);
  });
});

describe('postgres: replication', () => {
  it('the primary is not in recovery and streams to the replica through its slot', async () => {
    expect(await q('db1', 'select pg_is_in_recovery()')).toBe('f');
    const rep = await until('db2 streaming', () => q('db1', "select application_name, state, sync_state from pg_stat_replication where application_name = 'db2'"), (s) => s.startsWith('db2|streaming'));
    expect(rep).toBe('db2|streaming|async');
    expect(await q('db1', "select active from pg_replication_slots where slot_name = 'db2'")).toBe('t');
    const ssl = await q('db1', "select s.ssl from pg_stat_ssl s join pg_stat_replication r on r.pid = s.pid where r.application_name = 'db2'");
    expect(ssl).toBe('t');
  });

  it('the replica is in recovery, its WAL receiver streaming', async () => {
    expect(await q('db2', 'select pg_is_in_recovery()')).toBe('t');
    expect(await q('db2', 'select status from pg_stat_wal_receiver')).toBe('streaming');
  });

  it('a row written on the primary is read on the replica; a write on the replica fails read-only', async () => {
    // As the application does: tables owned by app (the grants' default privileges apply).
    await q('db1', "set role app; create table replicated(id int primary key, note text); insert into replicated values (1, 'from db1')", 'app');
    expect(await until('row on db2', () => q('db2', 'select note from replicated where id = 1', 'app'), (s) => s === 'from db1')).toBe('from db1');
    const w = await fleet.exec('db2', `cd / && runuser -u postgres -- psql -X -d app -c "insert into replicated values (2, 'x')"`);
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/cannot execute INSERT in a read-only transaction/);
  });

  it('pg_hba.conf has no error on any member, and is what the inventory allows', async () => {
    for (const h of ['db1', 'db2']) expect(await q(h, 'select count(*) from pg_hba_file_rules where error is not null')).toBe('0');
    const hba = await sh('db1', 'cat /etc/postgresql/15/main/pg_hba.conf');
    expect(hba).toMatch(new RegExp(`^hostssl\\s+replication\\s+replicator\\s+${ipOf('db2').replace(/\./g, '\\.')}/32\\s+scram-sha-256$`, 'm'));
    expect(hba).toMatch(new RegExp(`^hostssl\\s+app\\s+app,app_ro\\s+${ipOf('api1').replace(/\./g, '\\.')}/32\\s+scram-sha-256$`, 'm'));
    expect(hba).not.toMatch(/^host\s/m);
    expect(hba).not.toMatch(/\btrust\b/);
  });
});

describe('postgres: clients', () => {
  it('TLS verify-full from the api host, with the vault password (SCRAM)', async () => {
    const r = await apiPsql(fromApi('db1', 5432, 'app'), 'select current_user, ssl, version from pg_stat_ssl where pid = pg_backend_pid()');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toMatch(/^app\|t\|TLSv1\.[23]$/);
    const wrong = await apiPsql(fromApi('db1', 5432, 'app'), 'select 1', 'not-the-password');
    expect(wrong.stderr).toMatch(/password authentication failed for user "app"/);
  });

  it('service roles and non-TLS connections are refused from the network', async () => {
    const asRepl = await apiPsql(fromApi('db1', 5432, 'replicator'), 'select 1', PASSWORDS.replication);
    expect(asRepl.stderr).toMatch(/pg_hba.conf rejects connection/);
    const plain = await apiPsql(`host=${ipOf('db1')} dbname=app user=app sslmode=disable connect_timeout=5`, 'select 1');
    expect(plain.stderr).toMatch(/no pg_hba.conf entry/);
  });

  it('pgbouncer pools transactions over TLS for the api host; SHOW POOLS lists the pool', async () => {
    const r = await apiPsql(fromApi('db1', 6432, 'app'), 'select current_user');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('app');
    const pools = await sh('db1', `cd / && runuser -u postgres -- psql -X -A -F' ' -h /var/run/postgresql -p 6432 -d pgbouncer -c 'SHOW POOLS'`);
    expect(pools).toMatch(/^app app \d+ .* transaction$/m);
  });

  it('the firewall opens 5432 and 6432 to the api group only', async () => {
    const probe = async (from: string, port: number) =>
      (await fleet.exec(from, `timeout 2 bash -c 'echo > /dev/tcp/${ipOf('db1')}/${port}' && echo open || echo closed`)).stdout.trim();
    expect(await probe('api1', 5432)).toBe('open');
    expect(await probe('api1', 6432)).toBe('open');
    expect(await probe('backup1', 5432)).toBe('closed');
    expect(await probe('backup1', 6432)).toBe('closed');
    expect(await probe('api1', 8432)).toBe('closed');
  }, 60_000);

  it('postgres_exporter answers pg_up 1 on the private address only, as a pg_monitor-only role', async () => {
    const metrics = await until('pg_up', () => sh('db1', `curl -sf http://${ipOf('db1')}:9187/metrics`), (m) => /^pg_up 1$/m.test(m));
    expect(metrics).toMatch(/^pg_up 1$/m);
    expect(await sh('db1', 'ss -Hltn sport = :9187')).toMatch(new RegExp(`${ipOf('db1').replace(/\./g, '\\.')}:9187`));
    expect(await sh('db2', `curl -sf http://${ipOf('db2')}:9187/metrics | grep '^pg_up '`)).toBe('pg_up 1');
    // Least privilege: pg_monitor only, no password (peer from the exporter's OS user).
    expect(await q('db1', "select rolsuper, rolcreaterole, rolpassword is null, pg_has_role('postgres_exporter', 'pg_monitor', 'member') from pg_authid where rolname = 'postgres_exporter'")).toBe('f|f|t|t');
  });
});

describe('postgres: backups', () => {
  const pgbr = (args: string) => sh('backup1', `cd / && runuser -u postgres -- pgbackrest --stanza=main ${args}`);

  it('pgbackrest check passes and info shows a full backup in an encrypted repository', async () => {
    await pgbr('check');
    const info = JSON.parse(await pgbr('--output=json info'));
    expect(info[0].status.code).toBe(0);
    expect(info[0].cipher).toBe('aes-256-cbc');
    expect(info[0].backup.map((b: { type: string }) => b.type)).toContain('full');
    // Nothing of the repository on the database host.
    expect((await fleet.exec('db1', 'ls /var/lib/pgbackrest')).stdout.trim()).toBe('');
    expect(await sh('db1', "grep -c cipher /etc/pgbackrest/pgbackrest.conf || true")).toBe('0');
  }, 120_000);

  it('WAL is archived at least every archive_timeout (60 s)', async () => {
    expect(await q('db1', 'show archive_timeout')).toBe('1min');
    expect(await q('db1', 'select failed_count = 0 or last_archived_time > last_failed_time from pg_stat_archiver')).toBe('t');
  }, 60_000);

  it('the daily verification (check + verify + test restore) passes and exports its metrics', async () => {
    await sh('backup1', 'systemctl start infra-pgbackrest-verify.service');
    const prom = await sh('backup1', 'cat /var/lib/prometheus/node-exporter/pgbackrest-verify.prom /var/lib/prometheus/node-exporter/pgbackrest-info.prom');
    expect(prom).toMatch(/^pgbackrest_verify_success\{stanza="main"\} 1$/m);
    for (const step of ['check', 'verify', 'restore']) expect(prom).toMatch(new RegExp(`^pgbackrest_verify_step_success\\{stanza="main",step="${step}"\\} 1$`, 'm'));
    expect(prom).toMatch(/^pgbackrest_backup_last_completion_timestamp_seconds\{stanza="main",type="full"\} \d+$/m);
    expect(await sh('backup1', 'ls -A /var/lib/pgbackrest-verify')).toBe('');
    expect(await sh('backup1', 'systemctl list-timers --all --no-legend | grep -c infra-pgbackrest')).toBe('3');
  }, 300_000);

  it('PITR drill: a dropped table comes back by restoring to a time before the drop', async () => {
    await q('db1', 'set role app; create table drill(id int); insert into drill select generate_series(1, 42)', 'app');
    const before = await q('db1', "select to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
    await new Promise((r) => setTimeout(r, 1500));
    await q('db1', 'set role app; drop table drill', 'app');
    // The WAL holding the drop must be in the repository (check switches and waits for it).
    await pgbr('check');
    const count = await sh('backup1', `/usr/local/sbin/infra-pgbackrest restore-check --target-time '${before}' --database app --sql 'select count(*) from drill'`);
    expect(count).toBe('42');
    expect(await q('db1', "select to_regclass('drill') is null", 'app')).toBe('t');
  }, 300_000);
});

describe('postgres: maintenance', () => {
  it('the weekly VACUUM ANALYZE runs on the primary and skips itself on a standby', async () => {
    await sh('db1', 'systemctl start infra-pg-maintenance.service');
    expect(await sh('db1', 'journalctl -u infra-pg-maintenance -o cat --no-pager')).toMatch(/vacuuming database "app"/);
    expect(await q('db1', "select last_analyze is not null from pg_stat_user_tables where relname = 'replicated'", 'app')).toBe('t');
    await sh('db2', 'systemctl start infra-pg-maintenance.service');
    expect(await sh('db2', 'journalctl -u infra-pg-maintenance -o cat --no-pager')).toMatch(/a standby: maintenance runs on the primary/);
    expect(await sh('db1', 'systemctl list-timers --all --no-legend infra-pg-maintenance.timer')).toMatch(/infra-pg-maintenance\.timer/);
  }, 120_000);
});

describe('postgres: idempotence', () => {
  it('a second apply changes nothing; plan --detailed-exitcode exits 0', async () => {
    const second = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json'], { env, timeoutMs: 600_000 });
    expect(failures(second)).toEqual([]);
    expect(second.events.filter((e) => e.type === 'task.result' && e.status === 'changed').map((e) => `${(e as { host: string }).host}: ${(e as { task: string }).task}`)).toEqual([]);
    const plan = await infra(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--detailed-exitcode', '--json'], { env, timeoutMs: 600_000 });
    expect(plan.code).toBe(0);
  }, 900_000);
});

describe('postgres: changes after the first converge', () => {
  const writeHostVars = async (text: string) => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(fleet.inventoryDir, 'host_vars'), { recursive: true });
    await writeFile(join(fleet.inventoryDir, 'host_vars', 'db1.yaml'), text);
  };
  const onDb1 = (args: string[]) => infra([...args, PLAYBOOK, '-i', fleet.inventoryDir, '-l', 'db1', '--json'], { env, timeoutMs: 600_000 });
  const configChanges = (r: CliResult) => JSON.stringify(taskResults(r, 'db1').find((e) => e.module === 'postgres.config')!.changes);
  const startTime = () => q('db1', 'select pg_postmaster_start_time()');

  it('a rotated vault password and a reloadable setting: the plan says reload, the server is not restarted', async () => {
    const file = join(fleet.inventoryDir, 'group_vars', 'postgres.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace(/^( {4}password: ).*$/m, `$1${vault('postgres_users.0.password', ROTATED)}`));
    await writeHostVars("postgres_settings: { work_mem: '7MB' }\n");
    const before = await startTime();
    // The apply reports what check() decided, as a plan does (the next test asks plan itself).
    const r = await onDb1(['apply']);
    expect(failures(r)).toEqual([]);
    expect(configChanges(r)).toMatch(/"what":"reload postgresql@15-main","to":"work_mem"/);
    expect(configChanges(r)).not.toMatch(/restart/);
    expect(changedOn(r, 'db1')).toEqual(['postgres.config /etc/postgresql/15/main/conf.d/50-infra.conf', 'postgres.role app']);
    expect((r.stdout + r.stderr).includes(ROTATED)).toBe(false);
    expect(await q('db1', 'show work_mem')).toBe('7MB');
    expect(await startTime()).toBe(before);
    expect((await apiPsql(fromApi('db1', 6432, 'app'), 'select 1', ROTATED)).stdout.trim()).toBe('1');
    expect((await apiPsql(fromApi('db1', 5432, 'app'), 'select 1')).stderr).toMatch(/password authentication failed/);
  }, 600_000);

  it('a setting of context postmaster: the plan says restart and names it; only then is the server restarted', async () => {
    await writeHostVars("postgres_settings: { work_mem: '7MB', shared_buffers: '144MB' }\n");
    const before = await startTime();
    const plan = await onDb1(['plan']);
    expect(configChanges(plan)).toMatch(/"what":"restart postgresql@15-main","from":"needs a restart: shared_buffers"/);
    const r = await onDb1(['apply']);
    expect(failures(r)).toEqual([]);
    expect(await q('db1', 'show shared_buffers')).toBe('144MB');
    expect(await startTime()).not.toBe(before);
    expect(await until('db2 streaming after the restart', () => q('db1', "select state from pg_stat_replication where application_name = 'db2'"), (x) => x === 'streaming')).toBe('streaming');
  }, 600_000);

  it('pg_hba.conf that pg_hba_file_rules rejects is put back before any reload, and the run fails', async () => {
    const hba = () => sh('db1', 'sha256sum /etc/postgresql/15/main/pg_hba.conf');
    const before = await hba();
    await writeHostVars("postgres_settings: { work_mem: '7MB', shared_buffers: '144MB' }\npostgres_hba_allow: [{ from: [10.0.0.0/33] }]\n");
    const r = await onDb1(['apply']);
    expect(r.code).toBe(1);
    const failed = taskResults(r, 'db1').find((e) => e.module === 'postgres.hba')!;
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/rejected by pg_hba_file_rules; the previous file was put back and nothing reloaded:\n\d+: invalid CIDR mask in address "10\.0\.0\.0\/33"/);
    expect(await hba()).toBe(before);
    expect(await q('db1', 'select count(*) from pg_hba_file_rules where error is not null')).toBe('0');
    await writeHostVars("postgres_settings: { work_mem: '7MB', shared_buffers: '144MB' }\n");
  }, 600_000);
});

describe('postgres: a third replica joins', () => {
  it('db3 clones from the primary and streams; db1 and db2 are neither restarted nor re-cloned', async () => {
    const startTime = (h: string) => q(h, 'select pg_postmaster_start_time()');
    const before = { db1: await startTime('db1'), db2: await startTime('db2'), receiver: await q('db2', 'select pid from pg_stat_wal_receiver') };
    await addThirdReplica();
    const r = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json'], { env, timeoutMs: 600_000 });
    expect(failures(r)).toEqual([]);
    expect(await until('db3 streaming', () => q('db1', "select state from pg_stat_replication where application_name = 'db3'"), (s) => s === 'streaming')).toBe('streaming');
    expect(await until('row on db3', () => q('db3', 'select note from replicated where id = 1', 'app'), (s) => s === 'from db1')).toBe('from db1');
    expect({ db1: await startTime('db1'), db2: await startTime('db2'), receiver: await q('db2', 'select pid from pg_stat_wal_receiver') }).toEqual(before);
    // What the others had to learn: a slot on the primary, db3's address in pg_hba.conf, the firewall
    // and the failover tools' member list (and hardening's AIDE re-baseline, which follows any
    // watched file infra changes).
    const allowed = [/postgres\.hba/, /postgres\.slot db3/, /infra\.nft/, /^reload nftables$/, /^aide\.update re-baseline/, /^files\.template \/usr\/local\/sbin\/infra-pg-dr$/];
    for (const h of ['db1', 'db2']) {
      const unexpected = changedOn(r, h).filter((t) => !allowed.some((a) => a.test(t)));
      expect(unexpected, `${h} changed`).toEqual([]);
    }
    expect(changedOn(r, 'db1')).toEqual(expect.arrayContaining([expect.stringMatching(/postgres\.slot db3/)]));
  }, 900_000);
});

describe('postgres: failover safety', () => {
  it('after a manual promotion of the replica, re-apply stops every member (two primaries), names what to run, changes nothing', async () => {
    await q('db2', 'select pg_promote()');
    await until('db2 promoted', () => q('db2', 'select pg_is_in_recovery()'), (s) => s === 'f');
    const state = () => sh('db2', 'sha256sum /etc/postgresql/15/main/conf.d/50-infra.conf /etc/postgresql/15/main/pg_hba.conf; ls -la --time-style=full-iso /var/lib/postgresql/15/main | head -3');
    const before = await state();
    const r = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json'], { env, timeoutMs: 600_000 });
    expect(r.code).toBe(1);
    for (const h of ['db1', 'db2', 'db3']) {
      const results = taskResults(r, h);
      const guard = results.find((e) => e.module === 'cluster.primary')!;
      expect(guard.status, h).toBe('failed');
      expect(guard.error).toMatch(/several members answer as primary: db1, db2 \(pg_is_in_recovery\(\) on db1: f, db2: f, db3: t\)/);
      expect(guard.error).toMatch(/-l <that replica> -e postgres_rebuild_replica=true/);
      // Nothing after the guard ran in the postgres play.
      expect(results.filter((e) => e.module.startsWith('postgres.'))).toEqual([]);
      expect(changedOn(r, h), h).toEqual([]);
    }
    expect(changedOn(r, 'backup1')).toEqual([]);
    expect(await state()).toBe(before);
    expect(await q('db2', 'select pg_is_in_recovery()')).toBe('f');
  }, 900_000);

  it('the explicit rebuild path moves the promoted data aside and clones db2 again', async () => {
    const r = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '-l', 'db2', '-e', 'postgres_rebuild_replica=true', '--json'], { env, timeoutMs: 600_000 });
    expect(failures(r)).toEqual([]);
    expect(await q('db2', 'select pg_is_in_recovery()')).toBe('t');
    expect(await until('db2 streaming again', () => q('db1', "select state from pg_stat_replication where application_name = 'db2'"), (s) => s === 'streaming')).toBe('streaming');
    expect(await sh('db2', 'ls -d /var/lib/postgresql/15/main.pre-rebuild-*')).toMatch(/main\.pre-rebuild-\d{8}T\d{6}$/);
  }, 900_000);
});
