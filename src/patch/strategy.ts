/**
 * How a host leaves service while it is patched, and comes back: one strategy per patch
 * group (policy.strategy). Every strategy answers the same questions, in this order:
 *
 *   order   the group's hosts in patch order, read live (replicas first, the VIP holder last)
 *   guard   may this batch leave now? Refuses when another member is already out or unhealthy
 *           (never two members of a cluster down at once). Changes nothing.
 *   takeOut move its work away (VIP moved, drained, failed over, downtime announced)
 *   putBack back in service, verified (UP in HAProxy, a linked replica...); throws when it
 *           does not come back, leaving it out
 */
import type { PatchGroup } from './policy.js';
import type { Remote } from './remote.js';
import { keepalivedVip } from './keepalived.js';
import { haproxyDrain } from './haproxy.js';
import { redisSentinel } from './redis.js';
import { postgresReplicasFirst } from './postgres.js';

export interface Strategy {
  /** For the plan and the report: "drained in HAProxy backend api on lb1, lb2". */
  readonly describe: string;
  /** Nothing to move: no take-out or put-back steps, no time out of service. */
  readonly inPlace?: boolean;
  /** Hosts outside the group it acts on (the load balancers, the Sentinels): locked with the run. */
  helpers(): string[];
  order(hosts: string[]): Promise<string[]>;
  /** May these hosts (one batch) leave service together now? */
  guard(batch: string[]): Promise<void>;
  /** Returns what it did, for the report. */
  takeOut(host: string): Promise<string>;
  putBack(host: string): Promise<string>;
}

const none: Strategy = {
  describe: 'patched in place (no traffic to move)',
  inPlace: true,
  helpers: () => [],
  order: async (hosts) => hosts,
  guard: async () => {},
  takeOut: async () => 'nothing to move',
  putBack: async () => 'nothing to restore',
};

export function strategyFor(group: PatchGroup, remote: Remote): Strategy {
  switch (group.strategy) {
    case 'none':
      return none;
    case 'keepalived-vip':
      return keepalivedVip(remote, group);
    case 'haproxy-drain':
      return haproxyDrain(remote, group);
    case 'redis-sentinel':
      return redisSentinel(remote, group);
    case 'postgres':
      return postgresReplicasFirst(remote, group);
  }
}
