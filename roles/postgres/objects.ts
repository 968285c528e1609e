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

    // A slot per replica: the primary keeps the WAL a replica has not received yet.
    ...cluster.replicas.map((r) => postgres.slot({ name: slotName(r.name), ...pg })),
  ];
}
