/**
 * pgbouncer on every member (pure): transaction pooling over the local Unix socket, TLS to
 * clients, and no password file to keep in sync — pgbouncer looks a client's SCRAM verifier
 * up with auth_query through a SECURITY DEFINER function (superusers and replication roles
 * excluded), logging in itself as a peer-authenticated role that has no password.
 */
import { files, postgres, systemd, type HostView, type Task } from 'infra';
import type { PostgresVars } from './vars.js';
import type { Member } from './topology.js';
import { pgbouncerHbaRows } from './hba.js';
import { TLS } from './tls.js';

export const AUTH_FUNCTION_BODY = ' SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = p_usename AND NOT usesuper AND NOT userepl ';

export function authFunctionSql(authUser: string): string {
  const user = `"${authUser.replace(/"/g, '""')}"`;
  return [
    'CREATE SCHEMA IF NOT EXISTS pgbouncer AUTHORIZATION postgres;',
    'REVOKE ALL ON SCHEMA pgbouncer FROM PUBLIC;',
    `GRANT USAGE ON SCHEMA pgbouncer TO ${user};`,
    `CREATE OR REPLACE FUNCTION pgbouncer.get_auth(p_usename text) RETURNS TABLE(usename name, passwd text)`,
    `  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $body$${AUTH_FUNCTION_BODY}$body$;`,
    'REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;',
    `GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO ${user};`,
  ].join('\n');
}

/** True when the function is there, as written, and only the auth user may call it. */
export function authFunctionPresent(authUser: string): string {
  const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
  return `select exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where n.nspname = 'pgbouncer' and p.proname = 'get_auth' and p.prosecdef and p.prosrc = ${lit(AUTH_FUNCTION_BODY)}
    and p.proacl is not null and not exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0)
    and has_function_privilege(${lit(authUser)}, p.oid, 'EXECUTE'))`;
}

export function pgbouncerTasks(v: PostgresVars, member: Member, address: string, hosts: (p: string) => HostView[]): Task[] {
  const b = v.postgres_pgbouncer;
  const pg = { port: v.postgres_port };
  const databases = v.postgres_databases.map((d) => d.name);
  const owned = { mode: '0640', owner: 'postgres', group: 'postgres' };
  return [
    ...(member === 'primary'
      ? databases.flatMap((db) => [
          postgres.sql({ database: db, label: 'pgbouncer auth_query function', sql: authFunctionSql(b.auth_user), unless: authFunctionPresent(b.auth_user), ...pg }),
          postgres.grant({ role: b.auth_user, database: db, on: 'database', privileges: ['CONNECT'], ...pg }),
        ])
      : []),
    files.template({
      src: 'pgbouncer.ini.hbs',
      dest: '/etc/pgbouncer/pgbouncer.ini',
      ...owned,
      vars: {
        databases,
        pgPort: v.postgres_port,
        listen: address,
        port: b.port,
        authUser: b.auth_user,
        poolMode: b.pool_mode,
        defaultPoolSize: b.default_pool_size,
        maxClientConn: b.max_client_conn,
        tls: TLS,
      },
      // listen_addr and listen_port are read at start only.
      notify: 'restart pgbouncer',
    }),
    files.template({ src: 'pgbouncer-hba.conf.hbs', dest: '/etc/pgbouncer/pg_hba.conf', ...owned, vars: { rows: pgbouncerHbaRows(v, hosts) }, notify: 'reload pgbouncer' }),
    // The admin console's user must be listed, or pgbouncer looks it up with auth_query and hangs.
    files.template({ src: 'pgbouncer-userlist.txt.hbs', dest: '/etc/pgbouncer/userlist.txt', ...owned, notify: 'reload pgbouncer' }),
    systemd.service({ name: 'pgbouncer', enabled: true, state: 'started' }),
  ];
}
