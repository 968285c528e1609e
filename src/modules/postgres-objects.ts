/**
 * postgres.role, postgres.database, postgres.grant, postgres.slot, postgres.sql: what lives
 * inside the cluster (see postgres.ts).
 */
import { z } from 'zod';
import { Secret } from '../secrets/secret.js';
import {
  NOT_RUNNING_YET,
  QUIET_SESSION,
  ident,
  lit,
  parseJson,
  pgName,
  portSchema,
  psql,
  psqlChecked,
  readForCheck,
  scramMatches,
  scramVerifier,
  storedPasswordKind,
} from './postgres-sql.js';
import { defineModule, nonEmpty, unchanged, type Change, type Check } from './types.js';

// ---------------------------------------------------------------- postgres.role

const roleParams = z
  .object({
    name: pgName,
    /** From the vault. Unset: the password is left as it is (peer-only roles have none). */
    password: z.instanceof(Secret).optional(),
    login: z.boolean().default(true),
    superuser: z.boolean().default(false),
    createdb: z.boolean().default(false),
    createrole: z.boolean().default(false),
    replication: z.boolean().default(false),
    bypassrls: z.boolean().default(false),
    inherit: z.boolean().default(true),
    connectionLimit: z.number().int().min(-1).default(-1),
    /** Exactly these role memberships (others are revoked). */
    memberOf: z.array(pgName).default([]),
    port: portSchema,
  })
  .strict();
export type RoleParams = z.infer<typeof roleParams>;

interface RoleRow {
  superuser: boolean;
  login: boolean;
  createdb: boolean;
  createrole: boolean;
  replication: boolean;
  bypassrls: boolean;
  inherit: boolean;
  connectionLimit: number;
  memberOf: string[];
  /** The stored verifier: compared here, never printed. */
  password: string | null;
}

const ATTRS = ['superuser', 'login', 'createdb', 'createrole', 'replication', 'bypassrls', 'inherit'] as const;
const KEYWORD: Record<(typeof ATTRS)[number], string> = {
  superuser: 'SUPERUSER',
  login: 'LOGIN',
  createdb: 'CREATEDB',
  createrole: 'CREATEROLE',
  replication: 'REPLICATION',
  bypassrls: 'BYPASSRLS',
  inherit: 'INHERIT',
};

const roleQuery = (name: string): string => `select coalesce((select json_build_object(
  'superuser', rolsuper, 'login', rolcanlogin, 'createdb', rolcreatedb, 'createrole', rolcreaterole,
  'replication', rolreplication, 'bypassrls', rolbypassrls, 'inherit', rolinherit, 'connectionLimit', rolconnlimit,
  'password', rolpassword,
  'memberOf', coalesce((select json_agg(b.rolname order by b.rolname) from pg_auth_members m join pg_roles b on b.oid = m.roleid where m.member = a.oid), '[]'))
  from pg_authid a where rolname = ${lit(name)}), 'null')`;

export interface RoleData {
  create: boolean;
  attrs: string[];
  setPassword: boolean;
  grant: string[];
  revoke: string[];
}

/** The decision, pure. `row` undefined = server not there yet (plan), null = no such role. */
export function decideRole(p: RoleParams, row: RoleRow | null | undefined): Check<RoleData> {
  if (row === undefined) return { changes: [{ what: 'create role', to: p.name, from: NOT_RUNNING_YET }], data: { create: true, attrs: [], setPassword: !!p.password, grant: p.memberOf, revoke: [] } };
  const changes: Change[] = [];
  const data: RoleData = { create: row === null, attrs: [], setPassword: false, grant: [], revoke: [] };
  if (row === null) changes.push({ what: 'create role', to: p.name });
  for (const a of ATTRS) {
    if (row && row[a] !== p[a]) {
      changes.push({ what: a, from: String(row[a]), to: String(p[a]) });
      data.attrs.push(p[a] ? KEYWORD[a] : `NO${KEYWORD[a]}`);
    }
  }
  if (row && row.connectionLimit !== p.connectionLimit) {
    changes.push({ what: 'connection limit', from: String(row.connectionLimit), to: String(p.connectionLimit) });
    data.attrs.push(`CONNECTION LIMIT ${p.connectionLimit}`);
  }
  if (p.password) {
    const kind = storedPasswordKind(row?.password ?? null);
    const same = kind === 'scram' && scramMatches(row!.password!, p.password.reveal());
    if (!same) {
      data.setPassword = true;
      if (row) changes.push({ what: 'password', from: kind === 'scram' ? 'a different password' : kind === 'none' ? 'none' : `${kind} verifier`, to: 'the vault password (SCRAM-SHA-256)' });
    }
  }
  const have = row?.memberOf ?? [];
  data.grant = p.memberOf.filter((m) => !have.includes(m));
  data.revoke = have.filter((m) => !p.memberOf.includes(m));
  for (const m of data.grant) changes.push({ what: 'grant membership', to: m });
  for (const m of data.revoke) changes.push({ what: 'revoke membership', from: m });
  if (!nonEmpty(changes)) return unchanged(`role ${p.name} is as declared${p.password ? ' (password matches)' : ''}`);
  return { changes, data };
}

/** The SQL for a decided change; the password goes as a SCRAM verifier, never as itself. */
export function roleSql(p: RoleParams, d: RoleData): string {
  const attrs = d.create ? [...ATTRS.map((a) => (p[a] ? KEYWORD[a] : `NO${KEYWORD[a]}`)), `CONNECTION LIMIT ${p.connectionLimit}`] : d.attrs;
  const password = d.setPassword && p.password ? ` PASSWORD ${lit(scramVerifier(p.password.reveal()).reveal())}` : '';
  const lines = [QUIET_SESSION];
  if (d.create || attrs.length || password) lines.push(`${d.create ? 'CREATE' : 'ALTER'} ROLE ${ident(p.name)} WITH ${attrs.join(' ')}${password};`);
  for (const m of d.grant) lines.push(`GRANT ${ident(m)} TO ${ident(p.name)};`);
  for (const m of d.revoke) lines.push(`REVOKE ${ident(m)} FROM ${ident(p.name)};`);
  return lines.join('\n');
}

export const role = defineModule<RoleParams, z.input<typeof roleParams>, RoleData>({
  name: 'postgres.role',
  params: roleParams,
  describe: (p) => p.name,
  async check(host, p) {
    const row = await readForCheck(host, roleQuery(p.name), { port: p.port }, (o) => parseJson<RoleRow | null>(o));
    const c = decideRole(p, row);
    return c.changes.some((x) => x.what === 'password') ? { ...c, diff: [{ kind: 'value', name: `${p.name} password`, before: '********', after: '********', sensitive: true }] } : c;
  },
  async apply(host, p, c) {
    await psqlChecked(host, roleSql(p, c.data), { port: p.port, single: true });
  },
});

// ---------------------------------------------------------------- postgres.database

const databaseParams = z
  .object({
    name: pgName,
    owner: pgName,
    encoding: z.string().regex(/^[A-Za-z0-9_]+$/).default('UTF8'),
    /** LC_COLLATE and LC_CTYPE of a new database (default: the cluster's). */
    locale: z.string().regex(/^[A-Za-z0-9_.@-]+$/).optional(),
    port: portSchema,
  })
  .strict();
export type DatabaseParams = z.infer<typeof databaseParams>;

interface DatabaseRow {
  owner: string;
  encoding: string;
  collate: string;
  ctype: string;
}

export function decideDatabase(p: DatabaseParams, row: DatabaseRow | null | undefined): Check<{ create: boolean }> {
  if (row === undefined) return { changes: [{ what: 'create database', to: `${p.name} owned by ${p.owner}`, from: NOT_RUNNING_YET }], data: { create: true } };
  if (row === null) return { changes: [{ what: 'create database', to: `${p.name} owned by ${p.owner}` }], data: { create: true } };
  // Encoding and locale are fixed at creation: changing them means dump and restore.
  if (row.encoding.toUpperCase() !== p.encoding.toUpperCase()) throw new Error(`database ${p.name} has encoding ${row.encoding}, not ${p.encoding}: that needs a dump and restore, infra will not do it`);
  if (p.locale && (row.collate !== p.locale || row.ctype !== p.locale)) {
    throw new Error(`database ${p.name} has locale ${row.collate}/${row.ctype}, not ${p.locale}: that needs a dump and restore, infra will not do it`);
  }
  if (row.owner !== p.owner) return { changes: [{ what: 'owner', from: row.owner, to: p.owner }], data: { create: false } };
  return unchanged(`database ${p.name} exists, owned by ${p.owner}`);
}

export const database = defineModule<DatabaseParams, z.input<typeof databaseParams>, { create: boolean }>({
  name: 'postgres.database',
  params: databaseParams,
  describe: (p) => p.name,
  async check(host, p) {
    const sql = `select coalesce((select json_build_object('owner', pg_get_userbyid(datdba), 'encoding', pg_encoding_to_char(encoding), 'collate', datcollate, 'ctype', datctype) from pg_database where datname = ${lit(p.name)}), 'null')`;
    return decideDatabase(p, await readForCheck(host, sql, { port: p.port }, (o) => parseJson<DatabaseRow | null>(o)));
  },
  async apply(host, p, c) {
    const { create } = c.data;
    const locale = p.locale ? ` LC_COLLATE ${lit(p.locale)} LC_CTYPE ${lit(p.locale)}` : '';
    // CREATE DATABASE cannot run inside a transaction block: no -1.
    const sql = create
      ? `CREATE DATABASE ${ident(p.name)} OWNER ${ident(p.owner)} ENCODING ${lit(p.encoding)}${locale} TEMPLATE template0;`
      : `ALTER DATABASE ${ident(p.name)} OWNER TO ${ident(p.owner)};`;
    await psqlChecked(host, sql, { port: p.port });
  },
});

// ---------------------------------------------------------------- postgres.grant

export const PRIVILEGES = {
  database: ['CONNECT', 'CREATE', 'TEMPORARY'],
  schema: ['USAGE', 'CREATE'],
  tables: ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'],
  sequences: ['USAGE', 'SELECT', 'UPDATE'],
} as const;
export type GrantTarget = keyof typeof PRIVILEGES;

const grantParams = z
  .object({
    /** A role, or PUBLIC. */
    role: z.union([z.literal('PUBLIC'), pgName]),
    database: pgName,
    on: z.enum(['database', 'schema', 'tables', 'sequences']),
    /** For schema / tables / sequences. */
    schema: pgName.optional(),
    /** Exactly these (others are revoked); ALL means every privilege of the kind. */
    privileges: z.array(z.string().transform((s) => s.toUpperCase().replace(/^TEMP$/, 'TEMPORARY'))),
    /** tables / sequences: also the default privileges for objects `defaultsFor` creates later (default: the database owner). */
    defaultsFor: pgName.optional(),
    port: portSchema,
  })
  .strict()
  .refine((p) => (p.on === 'database') === (p.schema === undefined), { message: 'schema is required for schema, tables and sequences (and not allowed for database)' })
  .transform((p) => ({ ...p, privileges: p.privileges.includes('ALL') ? [...PRIVILEGES[p.on]] : [...new Set(p.privileges)].sort() }))
  .refine((p) => p.privileges.every((x) => (PRIVILEGES[p.on] as readonly string[]).includes(x)), (p) => ({ message: `privileges on ${p.on} are ${PRIVILEGES[p.on].join(', ')} (or ALL)` }));
export type GrantParams = z.infer<typeof grantParams>;

export interface GrantState {
  /** Privileges held now, per object (one entry for database/schema). */
  objects: { name: string; privileges: string[] }[];
  /** Default privileges for future objects (tables/sequences only). */
  defaults?: string[];
  /** The role whose future objects the defaults are for. */
  owner?: string;
}

const grantee = (role: string): string => (role === 'PUBLIC' ? '0' : `(select oid from pg_roles where rolname = ${lit(role)})`);

export function grantQuery(p: GrantParams): string {
  const who = grantee(p.role);
  const privs = (acl: string) => `coalesce((select json_agg(distinct a.privilege_type) from aclexplode(${acl}) a where a.grantee = ${who}), '[]')`;
  if (p.on === 'database') {
    return `select coalesce((select json_build_object('objects', json_build_array(json_build_object('name', datname, 'privileges', ${privs("coalesce(datacl, acldefault('d', datdba))")}))) from pg_database where datname = ${lit(p.database)}), '{"objects": []}')`;
  }
  if (p.on === 'schema') {
    return `select coalesce((select json_build_object('objects', json_build_array(json_build_object('name', nspname, 'privileges', ${privs("coalesce(nspacl, acldefault('n', nspowner))")}))) from pg_namespace where nspname = ${lit(p.schema!)}), '{"objects": []}')`;
  }
  const [kinds, aclKind, defKind] = p.on === 'tables' ? ["'r','p','v','m','f'", 'r', 'r'] : ["'S'", 's', 'S'];
  const owner = p.defaultsFor ? lit(p.defaultsFor) : `(select pg_get_userbyid(datdba) from pg_database where datname = current_database())`;
  return `with o as (select ${owner}::name as owner)
select json_build_object(
  'owner', (select owner from o),
  'objects', coalesce((select json_agg(json_build_object('name', c.relname, 'privileges', ${privs(`coalesce(c.relacl, acldefault('${aclKind}', c.relowner))`)}) order by c.relname)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = ${lit(p.schema!)} and c.relkind in (${kinds})), '[]'),
  'defaults', coalesce((select json_agg(distinct a.privilege_type) from pg_default_acl d, aclexplode(d.defaclacl) a
    where d.defaclrole = (select oid from pg_roles where rolname = (select owner from o))
      and d.defaclnamespace = (select oid from pg_namespace where nspname = ${lit(p.schema!)})
      and d.defaclobjtype = '${defKind}' and a.grantee = ${who}), '[]'))`;
}

export interface GrantData {
  grant: string[];
  revoke: string[];
  defaults?: { grant: string[]; revoke: string[]; owner: string };
}

export function decideGrant(p: GrantParams, s: GrantState | undefined): Check<GrantData> {
  const target = p.on === 'database' ? `database ${p.database}` : p.on === 'schema' ? `schema ${p.schema} in ${p.database}` : `${p.on} in ${p.database}.${p.schema}`;
  if (!s) return { changes: [{ what: `grant ${p.privileges.join(', ') || 'nothing'} on ${target} to ${p.role}`, from: NOT_RUNNING_YET }], data: { grant: p.privileges, revoke: [] } };
  if ((p.on === 'database' || p.on === 'schema') && s.objects.length === 0) {
    throw new Error(`${target} does not exist (declare it, or create it before granting on it)`);
  }
  const grant = new Set<string>();
  const revoke = new Set<string>();
  const differing: string[] = [];
  for (const o of s.objects) {
    const missing = p.privileges.filter((x) => !o.privileges.includes(x));
    const extra = o.privileges.filter((x) => !p.privileges.includes(x));
    missing.forEach((x) => grant.add(x));
    extra.forEach((x) => revoke.add(x));
    if (missing.length || extra.length) differing.push(o.name);
  }
  const changes: Change[] = [];
  const data: GrantData = { grant: [...grant].sort(), revoke: [...revoke].sort() };
  const on = p.on === 'tables' || p.on === 'sequences' ? `${differing.length} of ${s.objects.length} ${p.on} (${differing.slice(0, 5).join(', ')}${differing.length > 5 ? ', …' : ''})` : target;
  if (data.grant.length) changes.push({ what: `grant ${data.grant.join(', ')} to ${p.role}`, to: on });
  if (data.revoke.length) changes.push({ what: `revoke ${data.revoke.join(', ')} from ${p.role}`, from: on });
  if (s.defaults && s.owner) {
    const dg = p.privileges.filter((x) => !s.defaults!.includes(x));
    const dr = s.defaults.filter((x) => !p.privileges.includes(x));
    if (dg.length || dr.length) {
      data.defaults = { grant: dg, revoke: dr, owner: s.owner };
      changes.push({ what: `default privileges for ${p.on} ${s.owner} creates in ${p.schema}`, from: s.defaults.join(', ') || 'none', to: p.privileges.join(', ') || 'none' });
    }
  }
  if (!nonEmpty(changes)) return unchanged(`${p.role} has exactly ${p.privileges.join(', ') || 'no privileges'} on ${target}`);
  return { changes, data };
}

export function grantSql(p: GrantParams, d: GrantData): string {
  const to = p.role === 'PUBLIC' ? 'PUBLIC' : ident(p.role);
  const obj =
    p.on === 'database' ? `DATABASE ${ident(p.database)}` : p.on === 'schema' ? `SCHEMA ${ident(p.schema!)}` : `ALL ${p.on.toUpperCase()} IN SCHEMA ${ident(p.schema!)}`;
  const lines: string[] = [];
  if (d.grant.length) lines.push(`GRANT ${d.grant.join(', ')} ON ${obj} TO ${to};`);
  if (d.revoke.length) lines.push(`REVOKE ${d.revoke.join(', ')} ON ${obj} FROM ${to};`);
  if (d.defaults) {
    const head = `ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(d.defaults.owner)} IN SCHEMA ${ident(p.schema!)}`;
    if (d.defaults.grant.length) lines.push(`${head} GRANT ${d.defaults.grant.join(', ')} ON ${p.on.toUpperCase()} TO ${to};`);
    if (d.defaults.revoke.length) lines.push(`${head} REVOKE ${d.defaults.revoke.join(', ')} ON ${p.on.toUpperCase()} FROM ${to};`);
  }
  return lines.join('\n');
}

export const grant = defineModule<GrantParams, z.input<typeof grantParams>, GrantData>({
  name: 'postgres.grant',
  params: grantParams,
  describe: (p) => `${p.role} on ${p.on} ${p.database}${p.schema ? `.${p.schema}` : ''}`,
  async check(host, p) {
    // Database privileges live in the shared catalog; the others in the database itself.
    const db = p.on === 'database' ? 'postgres' : p.database;
    const r = await psql(host, grantQuery(p), { port: p.port, database: db });
    if (r.ok) {
      const state = parseJson<GrantState>(r.stdout);
      const missing = (p.on === 'database' || p.on === 'schema') && state.objects.length === 0;
      return decideGrant(p, missing && host.checkMode ? undefined : state);
    }
    // In a plan the database may come from an earlier task: psql cannot connect to it yet.
    if (host.checkMode && (r.down || /database ".*" does not exist/.test(r.message))) return decideGrant(p, undefined);
    throw new Error(r.message);
  },
  async apply(host, p, c) {
    await psqlChecked(host, grantSql(p, c.data), { port: p.port, database: p.on === 'database' ? 'postgres' : p.database, single: true });
  },
});

// ---------------------------------------------------------------- postgres.slot

const slotParams = z
  .object({
    name: z.string().regex(/^[a-z0-9_]{1,63}$/, 'slot names are lower-case letters, digits and _'),
    port: portSchema,
  })
  .strict();
export type SlotParams = z.infer<typeof slotParams>;

export const slot = defineModule<SlotParams, z.input<typeof slotParams>>({
  name: 'postgres.slot',
  params: slotParams,
  describe: (p) => p.name,
  async check(host, p) {
    const sql = `select coalesce((select slot_type from pg_replication_slots where slot_name = ${lit(p.name)}), '')`;
    const type = await readForCheck(host, sql, { port: p.port }, (o) => o.trim());
    if (type === 'physical') return unchanged(`physical slot ${p.name} exists`);
    if (type) throw new Error(`replication slot ${p.name} exists but is ${type}, not physical`);
    return { changes: [{ what: 'create physical replication slot', to: p.name, ...(type === undefined ? { from: NOT_RUNNING_YET } : {}) }] };
  },
  async apply(host, p) {
    // Reserve WAL from now on: a replica cloned next keeps what it needs (capped by max_slot_wal_keep_size).
    await psqlChecked(host, `select pg_create_physical_replication_slot(${lit(p.name)}, true);`, { port: p.port });
  },
});

// ---------------------------------------------------------------- postgres.sql

const sqlParams = z
  .object({
    database: pgName.default('postgres'),
    /** Run in one transaction. */
    sql: z.string().min(1),
    /** A query printing t when nothing needs doing (the guard; it must only read). */
    unless: z.string().min(1),
    /** Short label for output. */
    label: z.string().min(1),
    port: portSchema,
  })
  .strict();
export type SqlParams = z.infer<typeof sqlParams>;

export const sql = defineModule<SqlParams, z.input<typeof sqlParams>>({
  name: 'postgres.sql',
  params: sqlParams,
  describe: (p) => `${p.label} (${p.database})`,
  async check(host, p) {
    const r = await psql(host, p.unless, { port: p.port, database: p.database });
    if (r.ok && r.stdout.trim() === 't') return unchanged(`already done: ${p.label}`);
    if (r.ok) return { changes: [{ what: 'run', to: p.label }] };
    if (host.checkMode && (r.down || /database ".*" does not exist/.test(r.message))) return { changes: [{ what: 'run', to: p.label, from: NOT_RUNNING_YET }] };
    throw new Error(r.message);
  },
  async apply(host, p) {
    await psqlChecked(host, p.sql, { port: p.port, database: p.database, single: true });
  },
});
