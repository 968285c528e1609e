/**
 * postgres.* decisions without a server: SCRAM verifiers (checked against ones PostgreSQL 15
 * computed itself), the postgresql.conf reader, reload-vs-restart, role/database/grant
 * decisions, the topology guard, and that no password ever reaches a command line.
 */
import { describe, expect, it } from 'vitest';
import { Secret } from '../../../src/secrets/secret.js';
import { moduleRegistry, postgres } from '../../../src/modules/index.js';
import { changedSettings, parseConf, psqlCommand, saslprep, scramMatches, scramVerifier, storedPasswordKind } from '../../../src/modules/postgres-sql.js';
import { decideConfig, decideDatabase, decideGrant, decideRole, decideTopology, parseServerState, roleSql, grantSql, type RoleParams, type GrantParams } from '../../../src/modules/postgres.js';
import { fakeHost } from './fake-host.js';
import { hasChanges, type Check } from '../../../src/modules/types.js';
import type { WriteData } from '../../../src/modules/whole-file.js';

/** Verifiers PostgreSQL 15.18 stored for these passwords (CREATE ROLE ... PASSWORD '<plain>'). */
const FROM_POSTGRES: [string, string][] = [
  ['correct horse battery staple', 'SCRAM-SHA-256$4096:Z91CXdbA+juyJhJegosW+A==$eL0hysWXLTxAAME9b3idgvAt7ASyVUBnNRbtnvnmnPc=:bJOtZeO00EmC7HpSSafBBE4Z0+EqQBOniE/sIOe98Ho='],
  ['it\'s a "quoted" pass:word\\', 'SCRAM-SHA-256$4096:678i7FsBFjPCOuwqOtVaKA==$rKWVavBTsV2C3ALHbhmBSP9g/0EHZc7yuM6Btba+Bt0=:KhPDsY9CPZbI0xEBi+1GkmwPs6sDnQHE7DkTa+/neAI='],
  // Non-ASCII: a no-break space (→ space) and a soft hyphen (removed) by SASLprep.
  ['caf\u00e9\u00a0bar\u00ad', 'SCRAM-SHA-256$4096:dvAwo4wjggZ7+lpZexXYSw==$LcfKgtreP/bN8LqiHZE88SLh5AuNP0DDFDTEzuglI+M=:zYKp2bMB7vfBDJtaz2K2U/atgXiseYLVj2/Q1C7rK8M='],
];

const roleParams = (p: Partial<RoleParams> = {}): RoleParams => postgres.role.module.params.parse({ name: 'app', ...p });
const row = (r: Partial<Parameters<typeof decideRole>[1] & object> = {}) => ({
  superuser: false, login: true, createdb: false, createrole: false, replication: false, bypassrls: false, inherit: true,
  connectionLimit: -1, memberOf: [] as string[], password: null as string | null, ...r,
});

describe('SCRAM-SHA-256', () => {
  it('a verifier we compute matches its password and only it', () => {
    const v = scramVerifier('correct horse').reveal();
    expect(v).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
    expect(scramMatches(v, 'correct horse')).toBe(true);
    expect(scramMatches(v, 'correct horsE')).toBe(false);
    expect(scramVerifier('correct horse').reveal()).not.toBe(v); // a fresh salt each time
  });

  it.each(FROM_POSTGRES)('matches the verifier PostgreSQL computed for %j', (password, verifier) => {
    expect(scramMatches(verifier, password)).toBe(true);
    expect(scramMatches(verifier, `${password}x`)).toBe(false);
  });

  it('SASLprep: non-ASCII spaces map to a space, soft hyphens vanish, NFKC applies', () => {
    expect(saslprep('a\u00a0b\u00adc')).toBe('a bc');
    expect(saslprep('\u2168')).toBe('IX');
    expect(saslprep('plain-ascii')).toBe('plain-ascii');
  });

  it('stored password kinds', () => {
    expect(storedPasswordKind(null)).toBe('none');
    expect(storedPasswordKind('md5' + 'a'.repeat(32))).toBe('md5');
    expect(storedPasswordKind(scramVerifier('x1x').reveal())).toBe('scram');
  });

  it('a verifier is a Secret: masked if it ever reaches output', () => {
    const v = scramVerifier('pw-pw-pw');
    expect(String(v)).toBe('********');
  });
});

describe('postgres.role', () => {
  it('an unchanged password is no change; a different one is, and the diff is masked', () => {
    const pw = new Secret('s3cret-pass');
    expect(decideRole(roleParams({ password: pw }), row({ password: scramVerifier('s3cret-pass').reveal() })).changes).toEqual([]);
    const c = decideRole(roleParams({ password: pw }), row({ password: scramVerifier('old-pass').reveal() }));
    expect(c.changes).toEqual([{ what: 'password', from: 'a different password', to: 'the vault password (SCRAM-SHA-256)' }]);
    expect(JSON.stringify(c)).not.toContain('s3cret-pass');
    expect(decideRole(roleParams({ password: pw }), row({ password: 'md5' + '0'.repeat(32) })).changes[0]).toMatchObject({ what: 'password', from: 'md5 verifier' });
  });

  it('no password declared: the stored one is left alone', () => {
    expect(decideRole(roleParams(), row({ password: scramVerifier('whatever').reveal() })).changes).toEqual([]);
  });

  it('attributes and exact memberships', () => {
    const c = decideRole(roleParams({ createdb: true, connectionLimit: 5, memberOf: ['pg_monitor'] }), row({ memberOf: ['old_group'] }));
    expect(c.changes.map((x) => x.what)).toEqual(['createdb', 'connection limit', 'grant membership', 'revoke membership']);
    const sql = roleSql(roleParams({ createdb: true, connectionLimit: 5, memberOf: ['pg_monitor'] }), c.data as Parameters<typeof roleSql>[1]);
    expect(sql).toContain('ALTER ROLE "app" WITH CREATEDB CONNECTION LIMIT 5;');
    expect(sql).toContain('GRANT "pg_monitor" TO "app";');
    expect(sql).toContain('REVOKE "old_group" FROM "app";');
  });

  it('the SQL sends a verifier, never the password, keeps it out of the server log, and quotes names', () => {
    const p = roleParams({ name: 'App-ro.v2', password: new Secret("it's-secret") });
    const c = decideRole(p, null);
    const sql = roleSql(p, c.data as Parameters<typeof roleSql>[1]);
    expect(sql).not.toContain("it's-secret");
    expect(sql).toMatch(/^SET log_statement = 'none';$/m);
    expect(sql).toMatch(/CREATE ROLE "App-ro.v2" WITH NOSUPERUSER LOGIN NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT -1 PASSWORD 'SCRAM-SHA-256\$4096:/);
    const verifier = /PASSWORD '([^']+)'/.exec(sql)![1];
    expect(scramMatches(verifier, "it's-secret")).toBe(true);
  });

  it('check and apply: psql as postgres with the SQL on stdin; the password is nowhere in a command', async () => {
    const host = fakeHost([{ stdout: 'null\n' }, { stdout: '' }]);
    const runs: { cmd: string; stdin?: string }[] = [];
    const run = host.run.bind(host);
    host.run = async (cmd, o) => {
      runs.push({ cmd, stdin: o?.stdin?.toString() });
      return run(cmd, o);
    };
    const p = roleParams({ password: new Secret('pw-on-stdin-only') });
    const c = await postgres.role.module.check(host, p);
    expect(c.changes[0]).toMatchObject({ what: 'create role', to: 'app' });
    if (!hasChanges(c)) throw new Error('expected a change');
    await postgres.role.module.apply(host, p, c);
    for (const r of runs) {
      expect(r.cmd).toMatch(/^cd \/ && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 .*-p 5432 -d postgres$/);
      expect(r.cmd + (r.stdin ?? '')).not.toContain('pw-on-stdin-only');
    }
    expect(runs[1].cmd).toContain(' -1 ');
  });

  it('in a plan, a server that is not running yet is a pending creation; in a run it is an error', async () => {
    const down = { code: 2, stderr: 'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory' };
    const plan = await postgres.role.module.check(fakeHost([down], { checkMode: true }), roleParams());
    expect(plan.changes[0]).toMatchObject({ what: 'create role', from: 'server not running yet (expected from an earlier task)' });
    await expect(postgres.role.module.check(fakeHost([down]), roleParams())).rejects.toThrow(/psql on port 5432 failed \(exit 2\)/);
  });
});

describe('postgres.config', () => {
  it('parses postgresql.conf: comments, quotes, case, last value wins', () => {
    const conf = parseConf("# c\nShared_Buffers = '128MB'  # trailing\nwork_mem=4MB\narchive_command = 'echo ''#'' %p'\nwork_mem = 8MB\n");
    expect(Object.fromEntries(conf)).toEqual({ shared_buffers: '128MB', work_mem: '8MB', archive_command: "echo '#' %p" });
    expect(changedSettings(conf, parseConf("shared_buffers = '256MB'\nwork_mem = 8MB\n"))).toEqual(['archive_command', 'shared_buffers']);
  });

  const write = { changes: [{ what: 'content', from: 'a', to: 'b' }], data: { plan: { write: true } } } as unknown as Check<WriteData>;
  const server = { postmaster: ['shared_buffers', 'listen_addresses'], pending: [] as string[] };

  it('a changed postmaster setting: restart, named in the plan', () => {
    const c = decideConfig(write, ['shared_buffers', 'work_mem'], server, 'postgresql@15-main');
    expect(c.changes.slice(1)).toEqual([{ what: 'restart postgresql@15-main', from: 'needs a restart: shared_buffers' }]);
    expect(hasChanges(c) && c.data.restart).toBe(true);
  });

  it('only reloadable settings: reload, named in the plan', () => {
    const c = decideConfig(write, ['work_mem', 'archive_timeout'], server, 'postgresql@15-main');
    expect(c.changes.slice(1)).toEqual([{ what: 'reload postgresql@15-main', to: 'work_mem, archive_timeout' }]);
    expect(hasChanges(c) && c.data.restart).toBe(false);
  });

  it('a restart left pending by an earlier run is a change even when the file is up to date', () => {
    const c = decideConfig({ changes: [], reason: 'up to date' }, [], { ...server, pending: ['shared_buffers'] }, 'u');
    expect(c.changes).toEqual([{ what: 'restart u', from: 'needs a restart: shared_buffers (pending since an earlier run)' }]);
  });

  it('server not running: the settings take effect at start; up to date and nothing pending: no change', () => {
    expect(decideConfig(write, ['shared_buffers'], undefined, 'u').changes[1]).toEqual({ what: 'takes effect when the server starts', to: 'shared_buffers' });
    expect(decideConfig({ changes: [], reason: 'x.conf is up to date' }, [], server, 'u').changes).toEqual([]);
  });
});

describe('postgres.topology', () => {
  const p = (expect: 'primary' | 'standby', rebuild = false) => postgres.topology.module.params.parse({ expect, dataDir: '/var/lib/postgresql/15/main', service: 'postgresql@15-main', hint: 'HINT', rebuild });
  const state = (live: string, signal = 'no', cluster = 'yes') => parseServerState(`@@infra-pg@@cluster\n${cluster}\n@@infra-pg@@live\n${live}\n@@infra-pg@@signal\n${signal}\n`);

  it('reads the live state, or the signal file when the server is down', () => {
    expect(state('t|3')).toEqual({ cluster: true, running: true, standby: true, timeline: '3' });
    expect(state('f|1')).toEqual({ cluster: true, running: true, standby: false, timeline: '1' });
    expect(state('', 'yes')).toEqual({ cluster: true, running: false, standby: true });
    expect(state('', 'no', 'no')).toEqual({ cluster: false, running: false });
  });

  it('as the inventory says, or no cluster yet: no change', () => {
    expect(decideTopology(p('primary'), state('f|1'), 'db1').changes).toEqual([]);
    expect(decideTopology(p('standby'), state('', 'yes'), 'db2').changes).toEqual([]);
    expect(decideTopology(p('standby'), state('', 'no', 'no'), 'db2').reason).toBe('no cluster yet');
  });

  it('a promoted replica or a primary in recovery stops the host with what was found and the hint', () => {
    expect(() => decideTopology(p('standby'), state('f|2'), 'db2')).toThrow(
      'the inventory says db2 is a standby, but PostgreSQL there is a primary (not in recovery): pg_is_in_recovery() = f, timeline 2. Nothing was changed on db2. HINT',
    );
    expect(() => decideTopology(p('primary'), state('', 'yes'), 'db1')).toThrow(/db1 is a primary, but PostgreSQL there is a standby \(in recovery\): not running; standby.signal present/);
  });

  it('rebuild: only for a promoted replica, and the plan says where the data goes', () => {
    const c = decideTopology(p('standby', true), state('f|2'), 'db2');
    expect(c.changes[0]).toMatchObject({ what: 'rebuild as a standby', to: expect.stringMatching(/moved aside to \/var\/lib\/postgresql\/15\/main\.pre-rebuild-<time>/) });
    expect(() => decideTopology(p('primary', true), state('t|1'), 'db1')).toThrow(/standby/);
  });
});

describe('postgres.database', () => {
  const p = postgres.database.module.params.parse({ name: 'app', owner: 'app' });
  it('creates, changes the owner, and refuses to change encoding or locale', () => {
    expect(decideDatabase(p, null).changes).toEqual([{ what: 'create database', to: 'app owned by app' }]);
    expect(decideDatabase(p, { owner: 'postgres', encoding: 'UTF8', collate: 'C.UTF-8', ctype: 'C.UTF-8' }).changes).toEqual([{ what: 'owner', from: 'postgres', to: 'app' }]);
    expect(decideDatabase(p, { owner: 'app', encoding: 'UTF8', collate: 'C.UTF-8', ctype: 'C.UTF-8' }).changes).toEqual([]);
    expect(() => decideDatabase(p, { owner: 'app', encoding: 'LATIN1', collate: 'C', ctype: 'C' })).toThrow(/dump and restore/);
  });
});

describe('postgres.grant', () => {
  const g = (x: Partial<GrantParams> & Record<string, unknown>) => postgres.grant.module.params.parse({ role: 'app_ro', database: 'app', ...x }) as GrantParams;

  it('parameters: privileges per kind, ALL, TEMP, schema required', () => {
    expect(g({ on: 'database', privileges: ['connect', 'temp'] }).privileges).toEqual(['CONNECT', 'TEMPORARY']);
    expect(g({ on: 'tables', schema: 'public', privileges: ['ALL'] }).privileges).toEqual(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']);
    expect(postgres.grant.module.params.safeParse({ role: 'r', database: 'd', on: 'tables', privileges: ['SELECT'] }).success).toBe(false);
    expect(postgres.grant.module.params.safeParse({ role: 'r', database: 'd', on: 'schema', schema: 's', privileges: ['SELECT'] }).success).toBe(false);
  });

  it('exact privileges: grants what is missing, revokes what is extra, per table and for future tables', () => {
    const p = g({ on: 'tables', schema: 'public', privileges: ['SELECT'] });
    const c = decideGrant(p, {
      owner: 'app',
      objects: [{ name: 'a', privileges: ['SELECT'] }, { name: 'b', privileges: [] }, { name: 'c', privileges: ['SELECT', 'DELETE'] }],
      defaults: [],
    });
    expect(c.changes.map((x) => x.what)).toEqual(['grant SELECT to app_ro', 'revoke DELETE from app_ro', 'default privileges for tables app creates in public']);
    expect(c.changes[0]?.to).toBe('2 of 3 tables (b, c)');
    const sql = grantSql(p, c.data as Parameters<typeof grantSql>[1]);
    expect(sql.split('\n')).toEqual([
      'GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "app_ro";',
      'REVOKE DELETE ON ALL TABLES IN SCHEMA "public" FROM "app_ro";',
      'ALTER DEFAULT PRIVILEGES FOR ROLE "app" IN SCHEMA "public" GRANT SELECT ON TABLES TO "app_ro";',
    ]);
    expect(decideGrant(p, { owner: 'app', objects: [{ name: 'a', privileges: ['SELECT'] }], defaults: ['SELECT'] }).changes).toEqual([]);
  });

  it('PUBLIC with no privileges revokes the defaults (CONNECT, TEMPORARY)', () => {
    const p = g({ role: 'PUBLIC', on: 'database', privileges: [] });
    const c = decideGrant(p, { objects: [{ name: 'app', privileges: ['CONNECT', 'TEMPORARY'] }] });
    expect(grantSql(p, c.data as Parameters<typeof grantSql>[1])).toBe('REVOKE CONNECT, TEMPORARY ON DATABASE "app" FROM PUBLIC;');
  });

  it('granting on a schema that does not exist is an error in a run', () => {
    expect(() => decideGrant(g({ on: 'schema', schema: 'nope', privileges: ['USAGE'] }), { objects: [] })).toThrow(/schema nope in app does not exist/);
  });
});

describe('registration and commands', () => {
  it('every postgres module is registered', () => {
    for (const n of ['topology', 'config', 'hba', 'role', 'database', 'grant', 'slot', 'sql']) expect(moduleRegistry.has(`postgres.${n}`)).toBe(true);
  });

  it('psql runs as the postgres OS user with quoted arguments', () => {
    expect(psqlCommand({ port: 5433, database: "it's" })).toBe("cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1  -p 5433 -d 'it'\\''s'");
  });
});
