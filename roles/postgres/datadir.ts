/**
 * The data directory (pure): created on the primary (initdb with data checksums), cloned from
 * it on a replica. Both are guarded by PG_VERSION: never an initdb or a pg_basebackup over
 * existing data.
 */
import { command, files, sh, Secret, privateAddress, type Task } from 'infra';
import type { PostgresVars } from './vars.js';
import { slotName, type Cluster } from './topology.js';
import { PGPASS } from './tuning.js';
import { TLS } from './tls.js';
import type { Paths } from './layout.js';

export function createCluster(v: PostgresVars, p: Paths): Task {
  const initdb = v.postgres_data_checksums ? ['--', '--data-checksums'] : [];
  return command.run({
    name: `create cluster ${v.postgres_version}/${v.postgres_cluster}`,
    cmd: sh`pg_createcluster --port ${v.postgres_port} --locale ${v.postgres_locale} ${v.postgres_version} ${v.postgres_cluster} ${initdb}`,
    creates: `${p.data}/PG_VERSION`,
  });
}

/**
 * The replication password for libpq (0600 postgres), on every member: a replica streams and
 * clones with it; after a failover the old primary rejoins with it (pg_basebackup, and
 * pg_rewind, which reads the new primary's files over a normal connection to "postgres").
 * Any member may be the primary after a failover: the lines match every host.
 */
export function pgpassTask(v: PostgresVars): Task {
  const escaped = v.postgres_replication_password!.reveal().replace(/\\/g, '\\\\').replace(/:/g, '\\:');
  const line = (db: string) => `*:${v.postgres_port}:${db}:${v.postgres_replication_user}:${escaped}\n`;
  return files.file({ path: PGPASS, content: new Secret(line('replication') + line('postgres')), mode: '0600', owner: 'postgres', group: 'postgres' });
}

/**
 * A replica joins by pg_basebackup from the primary (through its slot, over TLS), into a
 * side directory renamed into place when complete: a join that dies half-way leaves no data
 * directory behind, and an existing one is never overwritten (guarded by PG_VERSION).
 */
export function joinAsReplica(v: PostgresVars, p: Paths, cluster: Cluster, hostName: string): Task {
  const primary = privateAddress(cluster.primary);
  const conninfo = `host=${primary} port=${v.postgres_port} user=${v.postgres_replication_user} sslmode=verify-full sslrootcert=${TLS.ca} passfile=${PGPASS}`;
  const joining = `${p.data}.joining`;
  const script = [
    'set -e',
    sh`rm -rf -- ${joining}`,
    sh`install -d -o postgres -g postgres -m 0700 ${joining}`,
    sh`cd / && runuser -u postgres -- pg_basebackup -d ${conninfo} -D ${joining} -X stream -S ${slotName(hostName)} -c fast --no-password`,
    sh`touch ${`${joining}/standby.signal`}`,
    // pg_createcluster adopts an existing data directory when it finds config files in it; the
    // placeholder pg_hba.conf lets the server start before postgres.hba installs the real one.
    sh`if [ ! -f ${`${p.conf}/postgresql.conf`} ]; then : > ${joining}/postgresql.conf; : > ${joining}/pg_ident.conf; echo 'local all postgres peer' > ${joining}/pg_hba.conf; fi`,
    sh`chown -R postgres:postgres ${joining} && mv -- ${joining} ${p.data}`,
    sh`if [ ! -f ${`${p.conf}/postgresql.conf`} ]; then pg_createcluster --port ${v.postgres_port} ${v.postgres_version} ${v.postgres_cluster}; fi`,
  ].join('\n');
  return command.run({ name: `clone from ${cluster.primary.name} (pg_basebackup)`, cmd: script, creates: `${p.data}/PG_VERSION`, timeoutMs: 6 * 3600_000 });
}
