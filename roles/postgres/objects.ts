/**
 * What lives inside the cluster, declared in variables (pure): service roles, users with
 * vault passwords, databases, grants, and one replication slot per replica. Applied on the
 * primary only; replicas receive them through replication.
 */
import { postgres, type Task } from 'infra';
import type { PostgresVars } from './vars.js';
import { slotName, type Cluster } from './topology.js';

export function databaseTasks(v: PostgresVars, cluster: Cluster): Task[] {
  const pg = { port: v.postgres_port };
  return [
    // Service roles: replication (vault password), and two peer-only roles without one.
    postgres.role({ name: v.postgres_replication_user, password: v.postgres_replication_password, replication: true, ...pg }),
    ...(v.postgres_exporter.enabled ? [postgres.role({ name: v.postgres_exporter.user, memberOf: ['pg_monitor'], ...pg })] : []),
    ...(v.postgres_pgbouncer.enabled ? [postgres.role({ name: v.postgres_pgbouncer.auth_user, ...pg })] : []),

    ...v.postgres_users.map((u) =>
      postgres.role({
        name: u.name,
        password: u.password,
        login: u.login,
        createdb: u.createdb,
        createrole: u.createrole,
        connectionLimit: u.connection_limit,
        memberOf: u.roles,
        ...pg,
      }),
    ),
    ...v.postgres_databases.flatMap((d) => [
      postgres.database({ name: d.name, owner: d.owner, encoding: d.encoding, locale: d.locale, ...pg }),
      // Least privilege: only the owner and the roles granted CONNECT may connect.
      ...(d.public_connect ? [] : [postgres.grant({ role: 'PUBLIC', database: d.name, on: 'database', privileges: [], ...pg })]),
    ]),
    ...v.postgres_grants.map((g) => postgres.grant({ ...g, ...pg })),

    // pg_rewind brings a failed primary back as a replica (playbooks/dr/postgres-rejoin.yaml): it
    // reads the new primary's files as the replication user, who may copy them all anyway.
    postgres.sql({ label: `pg_rewind functions for ${v.postgres_replication_user}`, sql: rewindGrantSql(v.postgres_replication_user), unless: rewindGrantPresent(v.postgres_replication_user), ...pg }),

    // A slot per replica: the primary keeps the WAL a replica has not received yet.
    ...cluster.replicas.map((r) => postgres.slot({ name: slotName(r.name), ...pg })),
  ];
}

/** What pg_rewind needs of a non-superuser source connection (its documentation's list). */
const REWIND_FUNCTIONS = [
  'pg_catalog.pg_ls_dir(text, boolean, boolean)',
  'pg_catalog.pg_stat_file(text, boolean)',
  'pg_catalog.pg_read_binary_file(text)',
  'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
];

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

export function rewindGrantSql(user: string): string {
  return `GRANT EXECUTE ON FUNCTION ${REWIND_FUNCTIONS.join(', ')} TO ${ident(user)};`;
}

export function rewindGrantPresent(user: string): string {
  return `select bool_and(has_function_privilege(${lit(user)}, f, 'EXECUTE')) from unnest(array[${REWIND_FUNCTIONS.map(lit).join(', ')}]) f`;
}
