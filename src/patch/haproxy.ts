/**
 * haproxy-drain: an API server leaves service through the admin socket of every load balancer
 * (module haproxy.server, the role haproxy-keepalived's socket): drain, wait until its
 * sessions are 0, patch it, then ready and wait until HAProxy's own health check says UP on
 * every load balancer. A server that does not come UP is drained again and the run stops.
 * Servers are named after inventory hosts (the role's convention).
 */
import { server as serverModule, type AdminState } from '../modules/haproxy.js';
import { hasChanges } from '../modules/types.js';
import type { PatchGroup } from './policy.js';
import type { Remote } from './remote.js';
import type { Strategy } from './strategy.js';

const mod = serverModule.module;

export function haproxyDrain(remote: Remote, group: PatchGroup): Strategy {
  const o = group.policy.haproxy;
  const lbs = (): string[] => {
    const found = remote.hosts(o.lbs);
    if (found.length === 0) throw new Error(`strategy haproxy-drain: no load balancer in ${o.lbs} (patch.haproxy.lbs)`);
    return found;
  };
  const params = (server: string, state: AdminState, wait: boolean, timeoutS: number) =>
    mod.params.parse({ backend: o.backend, server, state, wait, socket: o.socket, timeoutMs: timeoutS * 1000 });

  /** Sets the state on every load balancer at once; each waits for what the state promises. */
  async function setState(server: string, state: AdminState, wait: boolean, timeoutS: number): Promise<void> {
    const results = await Promise.allSettled(
      lbs().map(async (lb) => {
        const ctx = remote.context(lb);
        const p = params(server, state, wait, timeoutS);
        const c = await mod.check(ctx, p);
        if (hasChanges(c)) await mod.apply(ctx, p, c);
      }),
    );
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${lbs()[i]}: ${(r.reason as Error).message}`] : []));
    if (failed.length) throw new Error(failed.join('\n'));
  }

  return {
    describe: `drained in HAProxy backend ${o.backend} on every host of ${o.lbs} (sessions to 0), re-enabled once UP`,
    helpers: () => lbs().filter((h) => !group.hosts.includes(h)),
    order: async (hosts) => hosts,
    async guard(batch) {
      // The other servers of the group (all of them, whatever --limit says) must be ready and UP everywhere.
      const others = remote.hosts(group.name).filter((h) => !batch.includes(h));
      if (others.length === 0) throw new Error(`${batch.join(', ')} would be every server of backend ${o.backend}: draining them stops the service (a smaller patch.serial, or a downtime with strategy none)`);
      const problems: string[] = [];
      await Promise.all(
        lbs().flatMap((lb) =>
          others.map(async (other) => {
            const c = await mod.check(remote.context(lb), params(other, 'ready', true, o.up_timeout_s));
            if (c.changes.length > 0) problems.push(`${other} on ${lb}: ${c.changes.map((x) => `${x.what} (${x.from ?? '?'})`).join('; ')}`);
          }),
        ),
      );
      if (problems.length) throw new Error(`not draining ${batch.join(', ')} while another server is out of service (never two down at once):\n${problems.sort().join('\n')}`);
    },
    async takeOut(host) {
      await setState(host, 'drain', true, o.drain_timeout_s);
      return `drained in ${o.backend} on ${lbs().join(', ')}`;
    },
    async putBack(host) {
      try {
        await setState(host, 'ready', true, o.up_timeout_s);
      } catch (e) {
        // Not UP: out of rotation again (drain, no wait), and the run stops on the error.
        await setState(host, 'drain', false, o.drain_timeout_s).catch(() => {});
        throw new Error(`${host} did not come back UP in HAProxy (left drained): ${(e as Error).message}`);
      }
      return `ready and UP in ${o.backend} on ${lbs().join(', ')}`;
    },
  };
}
