/**
 * postgres: PostgreSQL 15 — one primary, streaming replicas (a slot each), TLS everywhere,
 * pgbouncer, postgres_exporter, pgBackRest with its repository on the backup host, and
 * timers for backups, their daily verification and weekly maintenance.
 *
 * Read top to bottom like an install guide. The same role runs on three kinds of host:
 * the primary (postgres_primary), the replicas (postgres_replica) and the repository host
 * (backup). It never fights the cluster: a member whose live role differs from the
 * inventory's (a promoted replica, a primary in recovery) stops that host before anything
 * is touched there.
 */
import { readFileSync } from 'node:fs';
import { defineRole, apt, files, systemd, command, postgres, cluster as clusterGuard, sh, privateAddress, type Facts, type Task } from 'infra';
import { vars, type PostgresVars } from './vars.js';
import { clusterOf, memberOf, slotName, validateInput } from './topology.js';
import { settingsFor, confValue } from './tuning.js';
import { hbaRows } from './hba.js';
import { tlsTasks } from './tls.js';
import { databaseTasks } from './objects.js';
import { pgbouncerTasks } from './pgbouncer.js';
import { archivingTasks, repositoryTasks } from './backup.js';
import { pathsOf } from './layout.js';
import { createCluster, joinAsReplica, pgpassTask } from './datadir.js';
import { drTasks } from './dr.js';
import { exporterTasks, maintenanceTasks } from './services.js';

const PGDG_KEY = readFileSync(new URL('./files/pgdg.asc', import.meta.url), 'utf8');

/** Asked of every member by the cluster guard: 'f' on the primary. */
const probe = (port: number): string => sh`cd / && runuser -u postgres -- psql -X -A -t -p ${port} -c ${'select pg_is_in_recovery()'}`;

/**
 * Debian 12 ships PostgreSQL 15, pgbouncer and pgBackRest; Ubuntu 22.04 ships 14, so there the
 * server, pgbouncer and pgBackRest come from the PostgreSQL project's repository (PGDG).
 */
export function packageSourceTasks(facts: Facts): Task[] {
  if (facts.os.id !== 'ubuntu') return [];
  return [
    apt.repository({
      name: 'pgdg',
      uris: 'https://apt.postgresql.org/pub/repos/apt',
      suites: `${facts.os.codename}-pgdg`,
      components: ['main'],
      key: PGDG_KEY,
    }),
  ];
}

/** Before any package: no cluster is created behind our back (see createcluster.conf.hbs). */
function noAutoCluster(): Task[] {
  return [
    files.directory({ path: '/etc/postgresql-common/createcluster.d', mode: '0755', owner: 'root', group: 'root' }),
    files.template({ src: 'createcluster.conf.hbs', dest: '/etc/postgresql-common/createcluster.d/50-infra.conf', mode: '0644', owner: 'root', group: 'root' }),
  ];
}

/** What to run when the inventory and the live cluster disagree (for the guards' errors). */
function failoverHint(v: PostgresVars, primary: string): string {
  return (
    `If a replica was promoted on purpose (a failover): make it the only host of ${v.postgres_primary_group} in the inventory, ` +
    `take ${primary} out of the postgres groups until it is rebuilt, and re-apply. ` +
    `If a replica was promoted by mistake, clone it again from ${primary} (its data is moved aside, not deleted): ` +
    `infra apply playbooks/site.yaml -l <that replica> -e postgres_rebuild_replica=true. ` +
    `A primary fenced by playbooks/dr/postgres-failover.yaml (${pathsOf(v).data}.fenced) comes back with playbooks/dr/postgres-rejoin.yaml. ` +
    `See docs/runbooks/dr/postgres-failover.md.`
  );
}

export default defineRole({
  name: 'postgres',
  vars,
  validate: validateInput,
  tasks: ({ vars: v, host, hosts }) => {
    const member = memberOf(v, host.groups)!;
    const p = pathsOf(v);
    const cluster = clusterOf(v, hosts);
    const address = privateAddress(hosts(host.name)[0]);
    if (member === 'backup') return repositoryTasks(v, address, cluster, p, [...noAutoCluster(), ...packageSourceTasks(host.facts)]);

    const archiving = !!cluster.backup;
    const settings = settingsFor(v, host.facts, {
      member,
      primaryAddress: privateAddress(cluster.primary),
      replicaNames: cluster.replicas.map((r) => r.name),
      hostName: host.name,
      slot: slotName(host.name),
      listenAddresses: v.postgres_listen_addresses ?? ['localhost', address],
      archiving,
    });
    const members = [cluster.primary, ...cluster.replicas];
    const pg = { port: v.postgres_port };
    const rebuild = member === 'replica' && v.postgres_rebuild_replica;
    const hint = failoverHint(v, cluster.primary.name);

    return [
      // 1. The live cluster must be what the inventory says, or nothing here is touched:
      //    the primary the members report is the inventory's, and this server is what its group says.
      ...(rebuild ? [] : [clusterGuard.primary({ members: `${v.postgres_primary_group}:${v.postgres_replica_group}`, expected: v.postgres_primary_group, probe: probe(v.postgres_port), primaryOutput: 'f', describe: 'pg_is_in_recovery()', hint })]),
      postgres.topology({ expect: member === 'primary' ? 'primary' : 'standby', dataDir: p.data, service: p.service, rebuild, hint, ...pg }),

      // 2. Packages.
      ...noAutoCluster(),
      ...packageSourceTasks(host.facts),
      apt.packages({
        names: [`postgresql-${v.postgres_version}`, `postgresql-client-${v.postgres_version}`, 'pgbouncer', 'pgbackrest', 'prometheus-postgres-exporter'],
      }),

      // 3. TLS (PostgreSQL, pgbouncer and pgBackRest re-read it).
      ...tlsTasks(v.postgres_tls, address, ['reload postgresql', ...(v.postgres_pgbouncer.enabled ? ['reload pgbouncer'] : []), ...(archiving ? ['restart pgbackrest'] : [])]),

      // 4. The cluster: created on the primary, cloned from it on a replica. Never over existing data.
      pgpassTask(v),
      member === 'primary' ? createCluster(v, p) : joinAsReplica(v, p, cluster, host.name),

      // 5. Configuration: validated with `postgres -C`, then reload — or restart, only when a
      //    changed setting needs one (the plan names them).
      postgres.config({
        dest: `${p.conf}/conf.d/50-infra.conf`,
        src: 'postgresql.conf.hbs',
        vars: { member, memoryMb: host.facts.memoryMb, cpus: host.facts.cpus, settings: settings.map((s) => ({ ...s, value: confValue(s.value) })) },
        mainConfig: `${p.conf}/postgresql.conf`,
        binary: `${p.bin}/postgres`,
        service: p.service,
        ...pg,
      }),
      files.template({
        src: 'pg_ident.conf.hbs',
        dest: `${p.conf}/pg_ident.conf`,
        mode: '0640',
        owner: 'postgres',
        group: 'postgres',
        vars: { exporterUser: v.postgres_exporter.user, authUser: v.postgres_pgbouncer.auth_user },
        notify: 'reload postgresql',
      }),
      systemd.service({ name: p.service, enabled: true, state: 'started' }),
      // The failover's tools; their interim settings end here (50-infra.conf says the same now).
      ...drTasks(v, p, members, host.name, cluster.primary.name),

      // 6. Who may connect: installed, checked by pg_hba_file_rules, then reloaded.
      postgres.hba({ dest: `${p.conf}/pg_hba.conf`, src: 'pg_hba.conf.hbs', vars: { rows: hbaRows(v, members, hosts) }, ...pg }),

      // 7. Roles, databases, grants and replication slots: on the primary (replicas get them by replication).
      ...(member === 'primary' ? databaseTasks(v, cluster) : []),

      // 8. Connection pooling, metrics, WAL archiving, maintenance.
      ...(v.postgres_pgbouncer.enabled ? pgbouncerTasks(v, member, address, hosts) : []),
      ...(v.postgres_exporter.enabled ? exporterTasks(v, address) : []),
      ...archivingTasks(v, address, cluster, p),
      ...(v.postgres_maintenance.enabled ? maintenanceTasks(v, host.facts) : []),
    ];
  },
  handlers: {
    'reload postgresql': command.run({
      name: 'reload postgresql',
      // The unit's name depends on the version and cluster: reload every running cluster.
      cmd: 'for u in $(systemctl list-units --state=active --plain --no-legend "postgresql@*" | cut -d" " -f1); do systemctl reload "$u"; done',
    }),
    'reload pgbouncer': systemd.reload('pgbouncer'),
    'restart pgbouncer': systemd.restart('pgbouncer'),
    'restart postgres exporter': systemd.restart('prometheus-postgres-exporter'),
    'restart pgbackrest': systemd.restart('pgbackrest'),
  },
});
