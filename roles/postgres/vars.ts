/**
 * The role's variables (all prefixed `postgres_`: a `postgres_*` name the schema does not
 * declare is an error, so a typo cannot silently fall back to a default). Checks that need
 * only the variables live here; checks that need the inventory are in topology.ts.
 */
import { z, Secret, didYouMean, postgres, vaultSecret } from 'infra';
import { tlsSchema } from './tls.js';

const secret = z.instanceof(Secret, { message: 'must be a !vault value (infra vault encrypt-string --name postgres_users.N.password --stdin)' });
const name = postgres.pgName;
/** A systemd OnCalendar= expression (`systemd-analyze calendar EXPR` shows when it fires). */
const calendar = z.string().regex(/^[A-Za-z0-9 *:.,/~-]+$/, 'a systemd calendar expression, e.g. "Sun *-*-* 01:00:00"');
const settingValue = z.union([z.string(), z.number(), z.boolean()]);

const user = z
  .object({
    name,
    password: secret.optional(),
    login: z.boolean().default(true),
    createdb: z.boolean().default(false),
    createrole: z.boolean().default(false),
    connection_limit: z.number().int().min(-1).default(-1),
    /** Roles this one is a member of (other declared users, or pg_* roles). */
    roles: z.array(name).default([]),
  })
  .strict();

const database = z
  .object({
    name,
    owner: name,
    encoding: z.string().default('UTF8'),
    locale: z.string().optional(),
    /** PUBLIC keeps CONNECT/TEMPORARY (PostgreSQL's default). Off: only granted roles connect. */
    public_connect: z.boolean().default(false),
  })
  .strict();

const grant = z
  .object({
    role: name,
    database: name,
    on: z.enum(['database', 'schema', 'tables', 'sequences']),
    schema: name.optional(),
    privileges: z.array(z.string()).min(1),
  })
  .strict();

const hbaRule = z
  .object({
    /** Groups, hosts, IPs or CIDRs (resolved like firewall.allow). */
    from: z.array(z.string().min(1)).min(1),
    databases: z.array(name).default(['all']),
    users: z.array(name).default(['all']),
  })
  .strict();

const fields = z.object({
  postgres_version: z.string().regex(/^\d+$/).default('15'),
  postgres_cluster: z.string().regex(/^[a-z0-9_-]+$/).default('main'),
  postgres_port: z.number().int().min(1).max(65535).default(5432),
  postgres_primary_group: z.string().default('postgres_primary'),
  postgres_replica_group: z.string().default('postgres_replica'),
  postgres_backup_group: z.string().default('backup'),
  /** Addresses to listen on; default: localhost and the address other hosts use. */
  postgres_listen_addresses: z.array(z.string().min(1)).optional(),
  postgres_locale: z.string().regex(/^[A-Za-z0-9_.@-]+$/).default('C.UTF-8'),
  postgres_data_checksums: z.boolean().default(true),
  /** Same on every member (a standby refuses to start with fewer than its primary). */
  postgres_max_connections: z.number().int().min(10).default(100),
  postgres_storage: z.enum(['ssd', 'hdd']).default('ssd'),
  /** Any postgresql.conf setting, over the computed ones. */
  postgres_settings: z.record(z.string().regex(/^[a-z_][a-z0-9_.]*$/, 'a setting name'), settingValue).default({}),
  postgres_synchronous_commit: z.enum(['off', 'local', 'on', 'remote_write', 'remote_apply']).default('on'),
  /** 0 = asynchronous replication; N = a commit waits for N replicas (ANY N). */
  postgres_sync_replicas: z.number().int().min(0).default(0),
  postgres_max_wal_senders: z.number().int().min(2).default(10),
  postgres_max_slot_wal_keep_size: z.string().regex(/^\d+(MB|GB|TB)$/).default('10GB'),
  postgres_replication_user: name.default('replicator'),
  /** Required on database hosts (checked with the inventory: topology.ts). */
  postgres_replication_password: vaultSecret('postgres_replication_password', { file: 'group_vars/postgres.yaml' }).optional(),
  /** Explicit, destructive: a promoted replica is moved aside and cloned again. */
  postgres_rebuild_replica: z.boolean().default(false),
  postgres_users: z.array(user).default([]),
  postgres_databases: z.array(database).default([]),
  postgres_grants: z.array(grant).default([]),
  postgres_hba_allow: z.array(hbaRule).default([{ from: ['api'], databases: ['all'], users: ['all'] }]),
  postgres_tls: tlsSchema.default({ source: 'pki' }),
  postgres_pgbouncer: z
    .object({
      enabled: z.boolean().default(true),
      port: z.number().int().min(1).max(65535).default(6432),
      pool_mode: z.enum(['session', 'transaction', 'statement']).default('transaction'),
      default_pool_size: z.number().int().min(1).default(20),
      max_client_conn: z.number().int().min(1).default(1000),
      /** Looks passwords up with auth_query (a SECURITY DEFINER function); no password: peer from the pgbouncer process. */
      auth_user: name.default('pgbouncer_auth'),
      /** Who may use pgbouncer (like postgres_hba_allow); default: the hba rules. */
      allow: z.array(hbaRule).optional(),
    })
    .strict()
    .default({}),
  postgres_exporter: z
    .object({
      enabled: z.boolean().default(true),
      port: z.number().int().min(1).max(65535).default(9187),
      /** A login role with pg_monitor only, authenticated by peer (no password). */
      user: name.default('postgres_exporter'),
    })
    .strict()
    .default({}),
  postgres_backup: z
    .object({
      enabled: z.boolean().default(true),
      stanza: z.string().regex(/^[a-z0-9_-]+$/).default('main'),
      /** pgBackRest's TLS server (tls-server-port) on the database hosts and the backup host. */
      port: z.number().int().min(1).max(65535).default(8432),
      repo_path: z.string().regex(/^\/[^\s'"]+$/).default('/var/lib/pgbackrest'),
      /** The repository encryption passphrase (required on the backup host). */
      cipher_pass: vaultSecret('postgres_backup.cipher_pass', { file: 'group_vars/backup.yaml', bytes: 48 }).optional(),
      /** Full backups kept (days, time-based): point-in-time recovery reaches back as far. */
      retention_days: z.number().int().min(7).default(30),
      full_schedule: calendar.default('Sun *-*-* 01:00:00'),
      diff_schedule: calendar.default('Mon..Sat *-*-* 01:00:00'),
      verify_schedule: calendar.default('*-*-* 05:30:00'),
      /** Seconds; a WAL segment is archived at least this often (RPO). */
      archive_timeout: z.number().int().min(1).max(60).default(60),
      process_max: z.number().int().min(1).default(2),
      /** Where the daily verification restores the latest backup (then removes it). */
      verify_dir: z.string().regex(/^\/[^\s'"]+$/).default('/var/lib/pgbackrest-verify'),
      /** node exporter's textfile collector directory. */
      textfile_dir: z.string().regex(/^\/[^\s'"]+$/).default('/var/lib/prometheus/node-exporter'),
    })
    .strict()
    .default({}),
  postgres_maintenance: z
    .object({
      enabled: z.boolean().default(true),
      /** vacuumdb --all --analyze on the primary (a standby skips it). */
      schedule: calendar.default('Sun *-*-* 03:00:00'),
    })
    .strict()
    .default({}),
});

export const vars = fields.passthrough().superRefine((v, ctx) => {
  const known = Object.keys(fields.shape);
  for (const key of Object.keys(v)) {
    if (key.startsWith('postgres_') && !known.includes(key)) {
      const guess = didYouMean(key, known);
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: `unknown variable of role postgres${guess ? ` — did you mean ${guess}?` : ''}` });
    }
  }
  const users = new Set(v.postgres_users.map((u) => u.name));
  const owners = new Set([...users, 'postgres']);
  v.postgres_databases.forEach((d, i) => {
    if (!owners.has(d.owner)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['postgres_databases', i, 'owner'], message: `owner "${d.owner}" is not a declared user (postgres_users)` });
    }
  });
  v.postgres_users.forEach((u, i) =>
    u.roles.forEach((r, j) => {
      if (!users.has(r) && !r.startsWith('pg_')) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['postgres_users', i, 'roles', j], message: `role "${r}" is not a declared user nor a pg_* role` });
      }
    }),
  );
  const dbs = new Set([...v.postgres_databases.map((d) => d.name), 'postgres']);
  v.postgres_grants.forEach((g, i) => {
    if (!users.has(g.role) && g.role !== 'PUBLIC') {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['postgres_grants', i, 'role'], message: `role "${g.role}" is not a declared user` });
    }
    if (!dbs.has(g.database)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['postgres_grants', i, 'database'], message: `database "${g.database}" is not declared (postgres_databases)` });
    }
    if ((g.on === 'database') !== (g.schema === undefined)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['postgres_grants', i, 'schema'], message: 'schema is required for schema, tables and sequences (and not allowed for database)' });
    }
    const allowed: readonly string[] = postgres.PRIVILEGES[g.on];
    g.privileges.forEach((p, j) => {
      const up = p.toUpperCase().replace(/^TEMP$/, 'TEMPORARY');
      if (up !== 'ALL' && !allowed.includes(up)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['postgres_grants', i, 'privileges', j], message: `privileges on ${g.on} are ${allowed.join(', ')} or ALL` });
      }
    });
  });
});

export type PostgresVars = z.output<typeof vars>;
