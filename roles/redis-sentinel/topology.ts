/**
 * Who is who, from the inventory (pure): the master the inventory names, the replicas, the
 * Sentinels, and the address each one is reached at. Bad topologies are input errors.
 */
import { UserError, privateAddress, type HostView } from 'infra';

export interface Member {
  name: string;
  ip: string;
  port: number;
}

export interface Topology {
  /** The master the inventory names (the Sentinels may know better after a failover). */
  master: Member;
  replicas: Member[];
  /** Every Redis host: master + replicas. */
  redis: Member[];
  sentinels: Member[];
}

export interface TopologyVars {
  redis_master_group: string;
  redis_replica_group: string;
  redis_sentinel_group: string;
  redis_port: number;
  redis_sentinel_port: number;
  redis_sentinel_quorum: number;
}

export function topology(v: TopologyVars, hosts: (pattern: string) => HostView[]): Topology {
  const group = (g: string): HostView[] => {
    try {
      return hosts(g);
    } catch {
      return [];
    }
  };
  const member = (port: number) => (h: HostView): Member => ({ name: h.name, ip: privateAddress(h), port });
  const masters = group(v.redis_master_group);
  if (masters.length !== 1) {
    throw new UserError(`role redis-sentinel: group ${v.redis_master_group} must hold exactly one host (it holds ${masters.length}${masters.length ? `: ${masters.map((h) => h.name).join(', ')}` : ''})`, {
      hint: `put the initial master (one host) in ${v.redis_master_group} in hosts.yaml; after a failover Sentinel decides, and the plan warns until the inventory follows`,
    });
  }
  const replicas = group(v.redis_replica_group).filter((h) => h.name !== masters[0].name);
  const sentinels = group(v.redis_sentinel_group);
  if (sentinels.length < v.redis_sentinel_quorum) {
    throw new UserError(`role redis-sentinel: redis_sentinel_quorum is ${v.redis_sentinel_quorum} but group ${v.redis_sentinel_group} has ${sentinels.length} host(s)`, {
      hint: `run at least ${v.redis_sentinel_quorum} Sentinels (3 on separate hosts is the usual minimum), or lower redis_sentinel_quorum`,
    });
  }
  const master = member(v.redis_port)(masters[0]);
  const replicaMembers = replicas.map(member(v.redis_port));
  return { master, replicas: replicaMembers, redis: [master, ...replicaMembers], sentinels: sentinels.map(member(v.redis_sentinel_port)) };
}
