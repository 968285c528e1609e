/**
 * roles/postgres with no host: the task lists for the primary, a replica and the repository
 * host (every task's parameters valid), sizing from facts, pg_hba rows from the inventory,
 * Ubuntu 22.04's package sources, and the input checks that stop a run before connecting.
 */
import { describe, it, expect } from 'vitest';
import role from '../../../roles/postgres/role.js';
import { vars as pgVars, type PostgresVars } from '../../../roles/postgres/vars.js';
import { memorySettings, cpuSettings, settingsFor, confValue } from '../../../roles/postgres/tuning.js';
import { hbaRows, pgbouncerHbaRows } from '../../../roles/postgres/hba.js';
import { validateInput } from '../../../roles/postgres/topology.js';
import { Secret } from '../../../src/secrets/secret.js';
import { UserError } from '../../../src/errors.js';
import type { Task } from '../../../src/modules/types.js';
import { contextFor, fakeInventory, hostsOf, FACTS, type FakeInventory } from './context.js';
import { infra, REPO } from '../cli/run-cli.js';
import { createRenderer } from '../../../src/render/template.js';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const secret = (v: string) => new Secret(v);
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const TLS = { postgres_tls: { source: 'vault', ca_cert: PEM, cert: PEM, key: secret('-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n') } };

const FLEET: FakeInventory = {
  hosts: {
    bastion: { address: '203.0.113.10', groups: ['bastion'], vars: { private_address: '10.20.0.2' } },
    api1: { address: '10.20.0.21', groups: ['api'], bastion: 'bastion' },
    api2: { address: '10.20.0.22', groups: ['api'], bastion: 'bastion' },
    db1: { address: '10.20.0.31', groups: ['postgres_primary'], bastion: 'bastion', vars: TLS },
    db2: { address: '10.20.0.32', groups: ['postgres_replica'], bastion: 'bastion', vars: TLS },
    backup1: { address: '10.20.0.61', groups: ['backup'], bastion: 'bastion', vars: { ...TLS, postgres_backup: { cipher_pass: secret('cipher-pass') } } },
    mon1: { address: '10.20.0.51', groups: ['monitoring'], bastion: 'bastion' },
  },
  groups: {
    postgres: {
      children: ['postgres_primary', 'postgres_replica'],
      vars: {
        postgres_replication_password: secret('repl-pass'),
        postgres_users: [{ name: 'app', password: secret('app-pass') }, { name: 'app_ro', login: false }],
        postgres_databases: [{ name: 'app', owner: 'app' }],
        postgres_grants: [{ role: 'app_ro', database: 'app', on: 'tables', schema: 'public', privileges: ['SELECT'] }],
      },
    },
  },
};

const inv = fakeInventory(FLEET);
const tasksOf = (host: string, opts: Parameters<typeof contextFor>[3] = {}) => role.tasks(contextFor(pgVars, inv, host, opts));
const params = (t: Task) => t.params as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const byModule = (tasks: Task[], name: string) => tasks.filter((t) => t.module.name === name);
const varsOf = (host: string, extra: Record<string, unknown> = {}): PostgresVars => contextFor(pgVars, inv, host, { vars: extra }).vars;

describe('task lists', () => {
  it.each(['db1', 'db2', 'backup1'])('%s: every task has valid parameters', (host) => {
    const tasks = tasksOf(host);
    expect(tasks.length).toBeGreaterThan(10);
    for (const t of tasks) {
      const r = t.module.params.safeParse(t.params);
      expect(r.success, `${t.module.name} ${JSON.stringify(t.params)}: ${r.success ? '' : r.error.message}`).toBe(true);
    }
  });

  it('the primary: the guards first, cluster created with checksums, objects and a slot per replica', () => {
    const tasks = tasksOf('db1');
    expect(tasks.slice(0, 2).map((t) => t.module.name)).toEqual(['cluster.primary', 'postgres.topology']);
    expect(params(tasks[0])).toMatchObject({ members: 'postgres_primary:postgres_replica', expected: 'postgres_primary', primaryOutput: 'f' });
    expect(params(tasks[0]).hint).toMatch(/-e postgres_rebuild_replica=true/);
    expect(params(tasks[1]).expect).toBe('primary');
    const create = byModule(tasks, 'command.run').find((t) => /pg_createcluster/.test(params(t).cmd))!;
    expect(params(create).cmd).toBe('pg_createcluster --port 5432 --locale C.UTF-8 15 main -- --data-checksums');
    expect(params(create).creates).toBe('/var/lib/postgresql/15/main/PG_VERSION');
    expect(byModule(tasks, 'postgres.role').map((t) => params(t).name)).toEqual(['replicator', 'postgres_exporter', 'pgbouncer_auth', 'app', 'app_ro']);
    expect(byModule(tasks, 'postgres.slot').map((t) => params(t).name)).toEqual(['db2']);
    expect(byModule(tasks, 'postgres.database').map((t) => params(t).name)).toEqual(['app']);
  });

  it('a replica: clones from the primary once, with a .pgpass (never a password in a command)', () => {
    const tasks = tasksOf('db2');
    expect(params(tasks[1]).expect).toBe('standby');
    // The explicit rebuild path skips the cluster guard (two primaries are expected then).
    const rebuild = tasksOf('db2', { vars: { postgres_rebuild_replica: true } });
    expect(rebuild[0].module.name).toBe('postgres.topology');
    expect(params(rebuild[0]).rebuild).toBe(true);
    const clone = byModule(tasks, 'command.run').find((t) => /pg_basebackup/.test(params(t).cmd))!;
    expect(params(clone).cmd).toMatch(/pg_basebackup -d 'host=10\.20\.0\.31 port=5432 user=replicator sslmode=verify-full .*passfile=\/var\/lib\/postgresql\/\.pgpass' -D \/var\/lib\/postgresql\/15\/main\.joining -X stream -S db2/);
    expect(params(clone).cmd).not.toContain('repl-pass');
    expect(params(clone).creates).toBe('/var/lib/postgresql/15/main/PG_VERSION');
    const pgpass = byModule(tasks, 'files.file').find((t) => params(t).path === '/var/lib/postgresql/.pgpass')!;
    expect(params(pgpass).content).toBeInstanceOf(Secret);
    expect(params(pgpass).mode).toBe('0600');
    expect(byModule(tasks, 'postgres.role')).toEqual([]);
  });

  it('every member: the failover tools (members sorted by name), the DR drop-in removed, .pgpass for replication and pg_rewind', async () => {
    for (const host of ['db1', 'db2']) {
      const tasks = tasksOf(host);
      const script = byModule(tasks, 'files.template').find((t) => params(t).dest === '/usr/local/sbin/infra-pg-dr')!;
      expect(params(script)).toMatchObject({ mode: '0755', owner: 'root', src: 'infra-pg-dr.sh.hbs' });
      expect(params(script).vars).toMatchObject({ self: host, slot: host, service: 'postgresql@15-main', dropIn: '/etc/postgresql/15/main/conf.d/60-infra-dr.conf', pgbouncerPort: '6432', syncReplicas: 0 });
      expect(params(script).vars.members).toEqual([{ name: 'db1', address: '10.20.0.31' }, { name: 'db2', address: '10.20.0.32' }]);
      const dropIn = byModule(tasks, 'files.absent').find((t) => params(t).path === '/etc/postgresql/15/main/conf.d/60-infra-dr.conf')!;
      expect(dropIn.notify).toEqual(['reload postgresql']);
      const pgpass = byModule(tasks, 'files.file').find((t) => params(t).path === '/var/lib/postgresql/.pgpass')!;
      expect((params(pgpass).content as Secret).reveal()).toBe('*:5432:replication:replicator:repl-pass\n*:5432:postgres:replicator:repl-pass\n');
    }
    // pg_rewind's functions for the replication user, guarded by a read-only query.
    const grant = byModule(tasksOf('db1'), 'postgres.sql').find((t) => /pg_rewind/.test(params(t).label))!;
    expect(params(grant).sql).toBe('GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean), pg_catalog.pg_stat_file(text, boolean), pg_catalog.pg_read_binary_file(text), pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO "replicator";');
    expect(params(grant).unless).toMatch(/^select bool_and\(has_function_privilege\('replicator', f, 'EXECUTE'\)\)/);
  });

  it('the failover tools render to a script bash accepts; "follows" asks the primary for its timeline and position (status streaming alone is no proof)', async () => {
    const script = byModule(tasksOf('db2'), 'files.template').find((t) => params(t).dest === '/usr/local/sbin/infra-pg-dr')!;
    expect(params(script).validate).toBe('bash -n %s');
    const renderer = createRenderer({ sharedDir: join(REPO, 'templates') });
    const text = await renderer.renderFile(join(REPO, 'roles/postgres'), 'infra-pg-dr.sh.hbs', { vars: params(script).vars, host: { name: 'db2' } });
    const check = spawnSync('bash', ['-n'], { input: text, encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
    expect(text).toContain("'db1') echo '10.20.0.31' ;;");
    const streamsFrom = /^streams_from\(\) \{\n[\s\S]*?\n\}$/m.exec(text)![0];
    expect(streamsFrom).toContain('-c IDENTIFY_SYSTEM');
    // The standby first, then the primary: under writes the other order sees the standby "ahead".
    expect(streamsFrom.indexOf('from pg_stat_wal_receiver')).toBeLessThan(streamsFrom.indexOf('-c IDENTIFY_SYSTEM'));
    expect(streamsFrom).toContain('[[ $tli = "$primary_tli"');
    expect(streamsFrom).toContain("pg_wal_lsn_diff('$lsn', '$primary_lsn') <= 0");
  });

  it('the exporter: configured before it is started (the package starts it without a DSN; systemd.service clears the failed unit)', () => {
    const tasks = tasksOf('db2');
    const conf = tasks.findIndex((t) => t.module.name === 'files.template' && params(t).dest === '/etc/default/prometheus-postgres-exporter');
    const start = tasks.findIndex((t) => t.module.name === 'systemd.service' && params(t).name === 'prometheus-postgres-exporter');
    expect(conf).toBeGreaterThan(0);
    expect(start).toBeGreaterThan(conf);
    expect(params(tasks[start])).toMatchObject({ state: 'started', enabled: true });
  });

  it('the backup host: repository tasks only, the cipher pass in a 0640 file owned by postgres', () => {
    const tasks = tasksOf('backup1');
    expect(byModule(tasks, 'postgres.topology')).toEqual([]);
    expect(byModule(tasks, 'cluster.primary')).toEqual([]);
    const conf = byModule(tasks, 'files.template').find((t) => params(t).dest === '/etc/pgbackrest/pgbackrest.conf')!;
    expect(params(conf)).toMatchObject({ mode: '0640', owner: 'postgres', sensitive: true, src: 'pgbackrest-repo.conf.hbs' });
    expect(params(conf).vars.members.map((m: { name: string }) => m.name)).toEqual(['db1', 'db2']);
    const timers = byModule(tasks, 'systemd.unit').map((t) => params(t).name).filter((n: string) => n.endsWith('.timer'));
    expect(timers).toEqual(['infra-pgbackrest-full.timer', 'infra-pgbackrest-diff.timer', 'infra-pgbackrest-verify.timer']);
  });

  it("the stanza: a repository lock held by a member's WAL push (exit 50) is waited out, any other failure is not", async () => {
    const stanza = byModule(tasksOf('backup1'), 'command.run').find((t) => t.name === 'stanza main')!;
    const dir = await mkdtemp(join(tmpdir(), 'infra-stanza-'));
    try {
      // A fake runuser: answers the exit codes listed in $dir/codes, one per call.
      await writeFile(join(dir, 'runuser'), `#!/bin/sh\nn=$(cat ${dir}/calls 2>/dev/null || echo 0); n=$((n + 1)); echo $n > ${dir}/calls\nexit $(sed -n "\${n}p" ${dir}/codes)\n`, { mode: 0o755 });
      const run = async (codes: number[]) => {
        await writeFile(join(dir, 'codes'), codes.join('\n') + '\n');
        await rm(join(dir, 'calls'), { force: true });
        const r = spawnSync('sh', ['-c', params(stanza).cmd], { env: { PATH: `${dir}:/usr/bin:/bin` } });
        return { code: r.status, calls: Number(await readFile(join(dir, 'calls'), 'utf8')) };
      };
      expect(await run([50, 0])).toEqual({ code: 0, calls: 2 });
      expect(await run([7, 0])).toEqual({ code: 7, calls: 1 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('Ubuntu 22.04: PostgreSQL 15, pgbouncer and pgBackRest come from the PGDG repository', () => {
    const ubuntu = { os: { id: 'ubuntu', versionId: '22.04', codename: 'jammy', prettyName: 'Ubuntu 22.04.4 LTS', family: 'debian' as const } };
    const tasks = tasksOf('db1', { facts: ubuntu });
    const repo = byModule(tasks, 'apt.repository');
    expect(repo).toHaveLength(1);
    expect(params(repo[0])).toMatchObject({ name: 'pgdg', uris: 'https://apt.postgresql.org/pub/repos/apt', suites: 'jammy-pgdg' });
    expect(params(repo[0]).key).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    expect(tasks.indexOf(repo[0])).toBeLessThan(tasks.indexOf(byModule(tasks, 'apt.packages')[0]));
    expect(byModule(tasksOf('db1'), 'apt.repository')).toEqual([]);
    expect(byModule(tasksOf('backup1', { facts: ubuntu }), 'apt.repository')).toHaveLength(1);
  });

  it('TLS from the internal PKI: key made on the host, the address also as a DNS name (pgBackRest 2.45)', () => {
    const tasks = tasksOf('db1', { vars: { postgres_tls: { source: 'pki' } } });
    const cert = byModule(tasks, 'tls.certificate');
    expect(cert).toHaveLength(1);
    expect(params(cert[0])).toMatchObject({ certPath: '/etc/postgresql/tls/server.crt', keyPath: '/etc/postgresql/tls/server.key', caPath: '/etc/postgresql/tls/ca.crt', owner: 'postgres', keyMode: '0600', sans: ['DNS:10.20.0.31'] });
    expect(cert[0].notify).toEqual(['reload postgresql', 'reload pgbouncer', 'restart pgbackrest']);
    // tls.certificate makes the key only in a directory no service user can write.
    const dir = byModule(tasks, 'files.directory').find((t) => params(t).path === '/etc/postgresql/tls')!;
    expect(params(dir)).toMatchObject({ owner: 'root', group: 'postgres', mode: '0750' });
    const vault = byModule(tasksOf('db1'), 'files.file').find((t) => params(t).path === '/etc/postgresql/tls/server.key')!;
    expect(params(vault).content).toBeInstanceOf(Secret);
  });
});

describe('sizing from facts', () => {
  it.each([
    [2048, 2, { shared_buffers: '512MB', effective_cache_size: '1536MB', maintenance_work_mem: '128MB', work_mem: '5MB', max_wal_size: '4GB' }],
    [16384, 8, { shared_buffers: '4096MB', effective_cache_size: '12288MB', maintenance_work_mem: '1024MB', work_mem: '40MB', max_wal_size: '8GB' }],
    [512, 1, { shared_buffers: '128MB', effective_cache_size: '384MB', maintenance_work_mem: '64MB', work_mem: '4MB', max_wal_size: '4GB' }],
  ])('%i MB RAM', (ram, _cpus, want) => {
    const s = Object.fromEntries(memorySettings(ram, 100).map((x) => [x.name, x.value]));
    expect(s).toMatchObject(want);
  });

  it('parallel workers from CPUs; settings a standby needs as high as its primary stay cluster-wide', () => {
    expect(Object.fromEntries(cpuSettings(16).map((x) => [x.name, x.value]))).toEqual({ max_parallel_workers: 8, max_parallel_workers_per_gather: 4, max_parallel_maintenance_workers: 4 });
    const ctx = { member: 'replica' as const, primaryAddress: '10.0.0.1', replicaNames: ['db2'], hostName: 'db2', slot: 'db2', listenAddresses: ['localhost'], archiving: true };
    const small = settingsFor(varsOf('db2'), { ...FACTS, cpus: 1, memoryMb: 1024 }, ctx);
    const big = settingsFor(varsOf('db2'), { ...FACTS, cpus: 32, memoryMb: 65536 }, ctx);
    for (const name of ['max_connections', 'max_wal_senders', 'max_replication_slots']) {
      expect(small.find((s) => s.name === name)!.value).toBe(big.find((s) => s.name === name)!.value);
    }
    expect(small.find((s) => s.name === 'max_worker_processes')).toBeUndefined();
  });

  it('postgres_settings override a computed value in place and add new ones', () => {
    const ctx = { member: 'primary' as const, primaryAddress: '10.0.0.1', replicaNames: [], hostName: 'db1', slot: 'db1', listenAddresses: ['localhost'], archiving: false };
    const s = settingsFor(varsOf('db1', { postgres_settings: { work_mem: '64MB', jit: false } }), FACTS, ctx);
    expect(s.find((x) => x.name === 'work_mem')).toEqual({ name: 'work_mem', value: '64MB', why: 'postgres_settings' });
    expect(confValue(s.find((x) => x.name === 'jit')!.value)).toBe('off');
    expect(s.find((x) => x.name === 'archive_mode')).toBeUndefined();
  });

  it('synchronous replication is a choice: async by default, ANY n of the replicas when asked', () => {
    const ctx = { member: 'primary' as const, primaryAddress: '10.0.0.1', replicaNames: ['db2', 'db3'], hostName: 'db1', slot: 'db1', listenAddresses: ['localhost'], archiving: true };
    const get = (extra: Record<string, unknown>, name: string) => settingsFor(varsOf('db1', extra), FACTS, ctx).find((x) => x.name === name)!.value;
    expect(get({}, 'synchronous_standby_names')).toBe('');
    expect(get({ postgres_sync_replicas: 1, postgres_synchronous_commit: 'remote_apply' }, 'synchronous_standby_names')).toBe('ANY 1 ("db2", "db3")');
    expect(get({ postgres_sync_replicas: 1, postgres_synchronous_commit: 'remote_apply' }, 'synchronous_commit')).toBe('remote_apply');
    expect(get({}, 'archive_timeout')).toBe(60);
  });
});

describe('pg_hba from the inventory', () => {
  const hosts = hostsOf(inv);
  it('local peer for service roles, TLS + SCRAM for replication members and the allowed groups, service roles rejected remotely', () => {
    const rows = hbaRows(varsOf('db1'), hosts('postgres'), hosts).map((r) => `${r.type} ${r.database} ${r.user} ${r.address} ${r.method}`.replace(/\s+/g, ' ').trim());
    expect(rows).toEqual([
      'local all postgres peer',
      'local all postgres_exporter peer map=exporter',
      'local all pgbouncer_auth peer map=pgbouncer',
      'local all all scram-sha-256',
      'hostssl replication replicator 10.20.0.31/32 scram-sha-256',
      'hostssl replication replicator 10.20.0.32/32 scram-sha-256',
      'hostssl postgres replicator 10.20.0.31/32 scram-sha-256',
      'hostssl postgres replicator 10.20.0.32/32 scram-sha-256',
      'hostssl all postgres,postgres_exporter,pgbouncer_auth,replicator 0.0.0.0/0 reject',
      'hostssl all postgres,postgres_exporter,pgbouncer_auth,replicator ::/0 reject',
      'hostssl all all 10.20.0.21/32 scram-sha-256',
      'hostssl all all 10.20.0.22/32 scram-sha-256',
    ]);
  });

  it('pgbouncer: the admin console by peer only, then the allowed clients', () => {
    const rows = pgbouncerHbaRows(varsOf('db1', { postgres_hba_allow: [{ from: ['api1', '192.0.2.0/24'], databases: ['app'], users: ['app'] }] }), hosts);
    expect(rows.map((r) => `${r.type} ${r.database} ${r.user} ${r.address} ${r.method}`.trim())).toEqual([
      'local pgbouncer postgres  peer',
      'hostssl all postgres,postgres_exporter,pgbouncer_auth,replicator 0.0.0.0/0 reject',
      'hostssl all postgres,postgres_exporter,pgbouncer_auth,replicator ::/0 reject',
      'hostssl app app 10.20.0.21/32 scram-sha-256',
      'hostssl app app 192.0.2.0/24 scram-sha-256',
    ]);
  });
});

describe('input checks before connecting', () => {
  const check = (spec: FakeInventory, host: string, extra: Record<string, unknown> = {}) => {
    const i = fakeInventory(spec);
    const ctx = contextFor(pgVars, i, host, { vars: extra });
    return () => validateInput({ vars: ctx.vars, host: { name: host, address: ctx.host.address, groups: ctx.host.groups }, hosts: ctx.hosts, inventory: i });
  };

  it('a replica group with no primary', () => {
    const spec: FakeInventory = { ...FLEET, hosts: { ...FLEET.hosts, db1: { ...FLEET.hosts.db1, groups: ['spare'] } } };
    expect(check(spec, 'db2')).toThrow(UserError);
    expect(check(spec, 'db2')).toThrow(/group postgres_primary has no host: a replica needs a primary/);
  });

  it('two primaries, a host in both groups, a repository on a database host', () => {
    const two: FakeInventory = { ...FLEET, hosts: { ...FLEET.hosts, db2: { ...FLEET.hosts.db2, groups: ['postgres_primary'] } } };
    expect(check(two, 'db1')).toThrow(/has 2 hosts \(db1, db2\): one primary only/);
    const both: FakeInventory = { ...FLEET, hosts: { ...FLEET.hosts, db2: { ...FLEET.hosts.db2, groups: ['postgres_primary', 'postgres_replica'] } } };
    expect(check(both, 'db2')).toThrow(/in both postgres_primary and postgres_replica/);
    const colocated: FakeInventory = { ...FLEET, hosts: { ...FLEET.hosts, db2: { ...FLEET.hosts.db2, groups: ['postgres_replica', 'backup'] } } };
    expect(check(colocated, 'db2')).toThrow(/backup repository host is also a database host/);
  });

  it('more synchronous replicas than replicas; missing secrets', () => {
    expect(check(FLEET, 'db1', { postgres_sync_replicas: 2 })).toThrow(/postgres_sync_replicas is 2 but there are 1 replicas/);
    expect(check(FLEET, 'db1', { postgres_replication_password: undefined })).toThrow(
      /postgres_replication_password not set; create it once: openssl rand -base64 32 .* infra vault encrypt-string --name postgres_replication_password --stdin/,
    );
    expect(check(FLEET, 'backup1', { postgres_backup: {} })).toThrow(/postgres_backup\.cipher_pass not set; create it once: openssl rand -base64 48/);
    expect(check(FLEET, 'db1')).not.toThrow();
    // The backup host needs no replication password, a database host no cipher pass.
    expect(check(FLEET, 'backup1', { postgres_replication_password: undefined })).not.toThrow();

  });

  it('the schema: unknown postgres_* variables, undeclared owners, roles and databases', () => {
    const parse = (v: Record<string, unknown>) => pgVars.safeParse(v);
    const unknown = parse({ postgres_shared_bufers: '1GB' });
    expect(unknown.success).toBe(false);
    expect(JSON.stringify(unknown.error!.issues)).toMatch(/unknown variable of role postgres/);
    expect(parse({ firewall: {}, other_role_var: 1 }).success).toBe(true);
    const owner = parse({ postgres_databases: [{ name: 'app', owner: 'nobody' }] });
    expect(owner.error!.issues[0]).toMatchObject({ path: ['postgres_databases', 0, 'owner'], message: 'owner "nobody" is not a declared user (postgres_users)' });
    const grant = parse({ postgres_users: [{ name: 'app' }], postgres_grants: [{ role: 'app', database: 'nope', on: 'tables', schema: 'public', privileges: ['SELEKT'] }] });
    expect(grant.error!.issues.map((i) => i.path.join('.'))).toEqual(['postgres_grants.0.database', 'postgres_grants.0.privileges.0']);
  });
});

describe('bad input through the CLI: exit 2 with file:line, before connecting', () => {
  const FIXTURE = 'test/fixtures/playbooks/postgres';
  /** A copy of the fixture inventory with one file edited; `infra apply` on it (TEST-NET addresses: a connection would hang, not exit 2). */
  async function applyWith(file: string, edit: (text: string) => string) {
    const { cp } = await import('node:fs/promises');
    const dir = await mkdtemp(`${tmpdir()}/infra-pg-input-`);
    await cp(`${REPO}/${FIXTURE}/inventory`, dir, { recursive: true });
    await writeFile(`${dir}/${file}`, edit(await readFile(`${dir}/${file}`, 'utf8')));
    const r = await infra(['apply', `${FIXTURE}/site.yaml`, '-i', dir, '--vault-password-file', `${FIXTURE}/vault-password`]);
    return { ...r, dir };
  }

  it('the fixture itself passes check (the edits below are what fails)', async () => {
    const r = await infra(['check', `${FIXTURE}/site.yaml`, '-i', `${FIXTURE}/inventory`, '--vault-password-file', `${FIXTURE}/vault-password`]);
    expect([r.code, r.stderr]).toEqual([0, '']);
  });

  it('the DR playbooks: each passes check with its -e; the failover without the replica to promote exits 2 at its line', async () => {
    const check = (playbook: string, extra: string[]) => infra(['check', `playbooks/dr/${playbook}.yaml`, '-i', `${FIXTURE}/inventory`, '--vault-password-file', `${FIXTURE}/vault-password`, ...extra]);
    expect((await check('postgres-failover', ['-e', 'postgres_failover_to=db2'])).code).toBe(0);
    expect((await check('postgres-rejoin', ['-e', 'postgres_rejoin_host=db1', '-e', 'postgres_failover_to=db2'])).code).toBe(0);
    expect((await check('postgres-restore', ['-e', 'postgres_restore_target_time=2026-11-30 14:00:00+00', '-e', 'postgres_restore_mode=in-place'])).code).toBe(0);
    const r = await check('postgres-failover', []);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/playbooks\/dr\/postgres-failover\.yaml:\d+:\d+: invalid parameters for cluster\.primary on db\d: expected: /);
  });

  it('an unknown postgres_* variable', async () => {
    const r = await applyWith('group_vars/postgres.yaml', (t) => `${t}postgres_sync_replica: 1\n`);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${r.dir}/group_vars/postgres.yaml:7:1: role postgres: variable postgres_sync_replica: unknown variable of role postgres — did you mean postgres_sync_replicas?`);
  });

  it('a database owner that is not a declared user', async () => {
    const r = await applyWith('group_vars/postgres.yaml', (t) => t.replace('{ name: app, owner: app }', '{ name: app, owner: nobody }'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${r.dir}/group_vars/postgres\\.yaml:\\d+:\\d+: role postgres: variable postgres_databases\\[0\\]\\.owner: owner "nobody" is not a declared user \\(postgres_users\\)`));
  });

  it('a replica group with no primary', async () => {
    const r = await applyWith('hosts.yaml', (t) => t.replace('groups: [postgres_primary]', 'groups: [api]'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${r.dir}/hosts.yaml:10:3: role postgres, host db2: group postgres_primary has no host: a replica needs a primary`);
    expect(r.stderr).toMatch(/hint: add the primary to group postgres_primary in hosts\.yaml/);
  });
});
