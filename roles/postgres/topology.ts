/**
 * Who is who, from the inventory: the primary, the replicas, the backup (repository) host,
 * and the input checks that need the inventory (run before anything connects).
 */
import { UserError, vaultSecret, type HostView, type RoleInputContext } from 'infra';
import type { PostgresVars } from './vars.js';

export type Member = 'primary' | 'replica' | 'backup';

export function memberOf(v: PostgresVars, groups: string[]): Member | undefined {
  if (groups.includes(v.postgres_primary_group)) return 'primary';
  if (groups.includes(v.postgres_replica_group)) return 'replica';
  if (groups.includes(v.postgres_backup_group)) return 'backup';
  return undefined;
}

export interface Cluster {
  primary: HostView;
  replicas: HostView[];
  /** The pgBackRest repository host, when there is one and backups are on. */
  backup?: HostView;
}

/** A group's hosts, or none when the group does not exist. */
function groupHosts(hosts: (p: string) => HostView[], group: string): HostView[] {
  try {
    return hosts(group);
  } catch {
    return [];
  }
}

export function clusterOf(v: PostgresVars, hosts: (p: string) => HostView[]): Cluster {
  const primaries = groupHosts(hosts, v.postgres_primary_group);
  if (primaries.length !== 1) throw new Error(`group ${v.postgres_primary_group} must have exactly one host, has ${primaries.length}`);
  const backups = v.postgres_backup.enabled ? groupHosts(hosts, v.postgres_backup_group) : [];
  return { primary: primaries[0], replicas: groupHosts(hosts, v.postgres_replica_group), backup: backups[0] };
}

/** Physical slot name of a replica: its host name in [a-z0-9_]. */
export const slotName = (host: string): string => host.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 63);

/** Input checks with the inventory, for every host of the play, before connecting. */
export function validateInput({ vars: v, host, hosts, inventory }: RoleInputContext<PostgresVars>): void {
  const pos = inventory.hosts.get(host.name)?.pos;
  const fail = (message: string, hint: string): never => {
    throw new UserError(`role postgres, host ${host.name}: ${message}`, { pos, hint });
  };
  const member = memberOf(v, host.groups);
  if (!member) fail(`the host is in none of ${v.postgres_primary_group}, ${v.postgres_replica_group}, ${v.postgres_backup_group}`, 'apply the role to those groups only (playbooks/site.yaml)');
  const inPrimary = host.groups.includes(v.postgres_primary_group);
  const inReplica = host.groups.includes(v.postgres_replica_group);
  const inBackup = host.groups.includes(v.postgres_backup_group);
  if (inPrimary && inReplica) fail(`it is in both ${v.postgres_primary_group} and ${v.postgres_replica_group}`, 'a host is either the primary or a replica');
  if (inBackup && (inPrimary || inReplica)) fail(`the backup repository host is also a database host`, 'backups live on another host than the one they protect: a separate host in the backup group');
  const primaries = groupHosts(hosts, v.postgres_primary_group);
  const replicas = groupHosts(hosts, v.postgres_replica_group);
  if (primaries.length === 0 && (member === 'replica' || member === 'backup')) {
    fail(`group ${v.postgres_primary_group} has no host: a ${member === 'replica' ? 'replica' : 'backup host'} needs a primary`, `add the primary to group ${v.postgres_primary_group} in hosts.yaml`);
  }
  if (primaries.length > 1) fail(`group ${v.postgres_primary_group} has ${primaries.length} hosts (${primaries.map((h) => h.name).join(', ')}): one primary only`, 'the others belong in the replica group');
  if (v.postgres_sync_replicas > replicas.length) fail(`postgres_sync_replicas is ${v.postgres_sync_replicas} but there are ${replicas.length} replicas: every commit would wait forever`, 'lower postgres_sync_replicas or add replicas');
  // One sender per replica, one for pg_basebackup of a joining replica, one for pgBackRest.
  if (replicas.length + 2 > v.postgres_max_wal_senders) fail(`${replicas.length} replicas need postgres_max_wal_senders ≥ ${replicas.length + 2}`, 'raise postgres_max_wal_senders (a restart of every member)');
  // Secrets: present where they are used, made the one way (src/cluster/secrets.ts).
  const need = (name: string, value: unknown, file: string, bytes?: number) => {
    const r = vaultSecret(name, { file, bytes }).safeParse(value);
    if (!r.success) fail(`${name} ${r.error.issues[0].message}`, 'secrets come from the vault: see roles/postgres/README.md');
  };
  if (member === 'backup') need('postgres_backup.cipher_pass', v.postgres_backup.cipher_pass, `group_vars/${v.postgres_backup_group}.yaml`, 48);
  else need('postgres_replication_password', v.postgres_replication_password, 'group_vars/postgres.yaml');
}
