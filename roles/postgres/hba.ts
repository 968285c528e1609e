/**
 * Who may connect, from the inventory (pure): pg_hba.conf and pgbouncer's hba file.
 * Local: peer for the postgres superuser and the two service roles (mapped from their OS
 * users in pg_ident.conf), SCRAM for everyone else (pgbouncer passes its clients through).
 * Network: TLS + SCRAM only, replication from the cluster's members, and the groups the
 * variables allow; service accounts are refused over the network; everything else matches
 * no line and is rejected.
 */
import { privateAddress, type HostView } from 'infra';
import type { PostgresVars } from './vars.js';

export interface HbaRow {
  type: 'local' | 'hostssl';
  database: string;
  user: string;
  address: string;
  method: string;
  comment?: string;
}

const IP = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+:[0-9a-fA-F:]*)(\/\d{1,3})?$/;

/** A group, host, IP or CIDR → CIDRs (a host address becomes /32 or /128). */
export function resolveSources(from: string[], hosts: (p: string) => HostView[]): string[] {
  const out = new Set<string>();
  for (const src of from) {
    if (src === 'any') ['0.0.0.0/0', '::/0'].forEach((c) => out.add(c));
    else if (IP.test(src)) out.add(src.includes('/') ? src : cidr(src));
    else for (const h of hosts(src)) out.add(cidr(privateAddress(h)));
  }
  return [...out].sort();
}

const cidr = (address: string): string => `${address}/${address.includes(':') ? 128 : 32}`;

/** Roles that never log in over the network: the superuser and the peer-only service roles. */
export const serviceRoles = (v: PostgresVars): string[] => ['postgres', v.postgres_exporter.user, v.postgres_pgbouncer.auth_user];

export function hbaRows(v: PostgresVars, members: HostView[], hosts: (p: string) => HostView[]): HbaRow[] {
  const rows: HbaRow[] = [
    { type: 'local', database: 'all', user: 'postgres', address: '', method: 'peer', comment: 'the superuser, locally only (infra, pgBackRest)' },
    { type: 'local', database: 'all', user: v.postgres_exporter.user, address: '', method: 'peer map=exporter', comment: 'postgres_exporter' },
    { type: 'local', database: 'all', user: v.postgres_pgbouncer.auth_user, address: '', method: 'peer map=pgbouncer', comment: 'pgbouncer auth_query' },
    { type: 'local', database: 'all', user: 'all', address: '', method: 'scram-sha-256', comment: 'pgbouncer passes its clients’ SCRAM through' },
  ];
  // Every member may stream from every other one: after a failover the new primary serves them.
  for (const a of resolveSources(members.map((m) => m.name), hosts)) {
    rows.push({ type: 'hostssl', database: 'replication', user: v.postgres_replication_user, address: a, method: 'scram-sha-256', comment: 'streaming replication' });
  }
  // pg_rewind of a failed primary reads the new primary's files over a normal connection.
  for (const a of resolveSources(members.map((m) => m.name), hosts)) {
    rows.push({ type: 'hostssl', database: 'postgres', user: v.postgres_replication_user, address: a, method: 'scram-sha-256', comment: 'pg_rewind (rejoin after a failover)' });
  }
  rows.push(...rejectServiceRoles([...serviceRoles(v), v.postgres_replication_user]));
  for (const rule of v.postgres_hba_allow) {
    for (const a of resolveSources(rule.from, hosts)) {
      rows.push({ type: 'hostssl', database: rule.databases.join(','), user: rule.users.join(','), address: a, method: 'scram-sha-256', comment: `from ${rule.from.join(', ')}` });
    }
  }
  return rows;
}

function rejectServiceRoles(users: string[]): HbaRow[] {
  return ['0.0.0.0/0', '::/0'].map((address) => ({ type: 'hostssl', database: 'all', user: users.join(','), address, method: 'reject', comment: 'service roles never log in over the network' }));
}

/** pgbouncer: the admin console for the postgres OS user (peer), TLS + SCRAM for the allowed clients. */
export function pgbouncerHbaRows(v: PostgresVars, hosts: (p: string) => HostView[]): HbaRow[] {
  const rules = v.postgres_pgbouncer.allow ?? v.postgres_hba_allow;
  const rows: HbaRow[] = [
    { type: 'local', database: 'pgbouncer', user: 'postgres', address: '', method: 'peer', comment: 'admin console (SHOW POOLS)' },
    ...rejectServiceRoles([...serviceRoles(v), v.postgres_replication_user]),
  ];
  for (const rule of rules) {
    for (const a of resolveSources(rule.from, hosts)) {
      rows.push({ type: 'hostssl', database: rule.databases.join(','), user: rule.users.join(','), address: a, method: 'scram-sha-256', comment: `from ${rule.from.join(', ')}` });
    }
  }
  return rows;
}
