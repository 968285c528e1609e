/**
 * postgresql.conf settings, pure: memory and parallelism from the host's facts (vertical
 * scaling), replication and archiving from the inventory, then the operator's overrides.
 *
 * Settings a standby must have at least as high as its primary (max_connections,
 * max_worker_processes, max_wal_senders, max_prepared_transactions, max_locks_per_transaction)
 * are NOT derived from per-host facts: a replica on smaller hardware would refuse to start.
 * They are variables with one value for the whole cluster.
 */
import type { Facts } from 'infra';
import type { PostgresVars } from './vars.js';
import type { Member } from './topology.js';
import { TLS } from './tls.js';

export type Setting = { name: string; value: string | number | boolean; why?: string };

const MB = (n: number): string => `${Math.max(1, Math.floor(n))}MB`;

/** pgtune-style memory sizing (web / OLTP profile) from the host's RAM. */
export function memorySettings(memoryMb: number, maxConnections: number): Setting[] {
  const sharedBuffers = Math.min(Math.max(memoryMb * 0.25, 128), 64 * 1024);
  const workMem = Math.min(Math.max((memoryMb - sharedBuffers) / (3 * maxConnections), 4), 256);
  return [
    { name: 'shared_buffers', value: MB(sharedBuffers), why: '25% of RAM' },
    { name: 'effective_cache_size', value: MB(memoryMb * 0.75), why: '75% of RAM (planner hint)' },
    { name: 'maintenance_work_mem', value: MB(Math.min(Math.max(memoryMb / 16, 64), 2048)), why: 'RAM/16, 64MB..2GB' },
    { name: 'work_mem', value: MB(workMem), why: '(RAM - shared_buffers) / (3 × max_connections), 4..256MB' },
    // WAL: checkpoints spread out, bigger on hosts that can afford the disk.
    { name: 'min_wal_size', value: memoryMb >= 8192 ? '2GB' : '1GB' },
    { name: 'max_wal_size', value: memoryMb >= 8192 ? '8GB' : '4GB' },
  ];
}

export function cpuSettings(cpus: number): Setting[] {
  const perGather = Math.min(Math.max(Math.floor(cpus / 2), 1), 4);
  return [
    { name: 'max_parallel_workers', value: Math.min(Math.max(cpus, 2), 8), why: 'CPUs, 2..8 (max_worker_processes stays 8)' },
    { name: 'max_parallel_workers_per_gather', value: perGather, why: 'CPUs/2, 1..4' },
    { name: 'max_parallel_maintenance_workers', value: perGather },
  ];
}

export interface ClusterContext {
  member: Member;
  /** Address of the primary (replicas connect to it). */
  primaryAddress: string;
  /** Host names of the replicas (synchronous_standby_names). */
  replicaNames: string[];
  /** This host's name (application_name, slot). */
  hostName: string;
  slot: string;
  listenAddresses: string[];
  archiving: boolean;
}

export function clusterSettings(v: PostgresVars, c: ClusterContext): Setting[] {
  const out: Setting[] = [
    { name: 'listen_addresses', value: c.listenAddresses.join(',') },
    { name: 'port', value: v.postgres_port },
    { name: 'max_connections', value: v.postgres_max_connections },
    { name: 'password_encryption', value: 'scram-sha-256' },
    { name: 'ssl', value: true },
    { name: 'ssl_cert_file', value: TLS.cert },
    { name: 'ssl_key_file', value: TLS.key },
    { name: 'ssl_ca_file', value: TLS.ca },
    { name: 'ssl_min_protocol_version', value: 'TLSv1.2' },
    { name: 'wal_level', value: 'replica' },
    { name: 'wal_log_hints', value: true, why: 'pg_rewind can bring a failed primary back as a replica' },
    { name: 'wal_compression', value: true },
    { name: 'checkpoint_completion_target', value: 0.9 },
    { name: 'max_wal_senders', value: v.postgres_max_wal_senders },
    { name: 'max_replication_slots', value: v.postgres_max_wal_senders },
    { name: 'max_slot_wal_keep_size', value: v.postgres_max_slot_wal_keep_size, why: 'a dead replica cannot fill the primary’s disk' },
    { name: 'hot_standby', value: true },
    { name: 'hot_standby_feedback', value: true, why: 'no query cancellations on replicas (at the cost of some bloat)' },
    { name: 'synchronous_commit', value: v.postgres_synchronous_commit },
    { name: 'synchronous_standby_names', value: v.postgres_sync_replicas > 0 ? `ANY ${v.postgres_sync_replicas} (${c.replicaNames.map((n) => `"${n}"`).join(', ')})` : '' },
    { name: 'random_page_cost', value: v.postgres_storage === 'ssd' ? 1.1 : 4 },
    { name: 'effective_io_concurrency', value: v.postgres_storage === 'ssd' ? 200 : 2 },
    { name: 'shared_preload_libraries', value: 'pg_stat_statements' },
    { name: 'log_min_duration_statement', value: '1s' },
    { name: 'log_checkpoints', value: true },
    { name: 'log_lock_waits', value: true },
    { name: 'log_temp_files', value: 0 },
    { name: 'log_autovacuum_min_duration', value: '10s' },
    { name: 'timezone', value: 'UTC' },
  ];
  if (c.archiving) {
    out.push(
      { name: 'archive_mode', value: 'on' },
      { name: 'archive_command', value: `pgbackrest --stanza=${v.postgres_backup.stanza} archive-push %p` },
      { name: 'archive_timeout', value: v.postgres_backup.archive_timeout, why: 'RPO of the archive' },
    );
    // No restore_command on the members: a replica promoted by mistake archives its new
    // timeline into the shared repository, and every standby that restores from it would then
    // try to follow that timeline and refuse to start. Slots keep the WAL replicas need.

  }
  if (c.member === 'replica') {
    out.push(
      {
        name: 'primary_conninfo',
        value: `host=${c.primaryAddress} port=${v.postgres_port} user=${v.postgres_replication_user} application_name=${c.hostName} sslmode=verify-full sslrootcert=${TLS.ca} passfile=${PGPASS}`,
      },
      { name: 'primary_slot_name', value: c.slot },
    );
  }
  return out;
}

/** The replication password, for pg_basebackup and the WAL receiver (libpq reads it). */
export const PGPASS = '/var/lib/postgresql/.pgpass';

export function settingsFor(v: PostgresVars, facts: Facts, c: ClusterContext): Setting[] {
  const computed = [...clusterSettings(v, c), ...memorySettings(facts.memoryMb, v.postgres_max_connections), ...cpuSettings(facts.cpus)];
  const overrides = new Map(Object.entries(v.postgres_settings));
  const out = computed.map((s) => (overrides.has(s.name) ? { name: s.name, value: overrides.get(s.name)!, why: 'postgres_settings' } : s));
  for (const [name, value] of overrides) if (!computed.some((s) => s.name === name)) out.push({ name, value, why: 'postgres_settings' });
  return out;
}

/** A value as postgresql.conf wants it: numbers and booleans bare, everything else quoted. */
export function confValue(v: string | number | boolean): string {
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (typeof v === 'number') return String(v);
  return `'${v.replace(/'/g, "''")}'`;
}
