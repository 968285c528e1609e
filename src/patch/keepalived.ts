/**
 * keepalived-vip: the load balancers of role haproxy-keepalived share a VIP; every node runs
 * `state BACKUP` with `nopreempt`. Taking a node out = stopping its keepalived: it sends a
 * priority-0 advert and a peer takes the VIP at once. Bringing it back = starting keepalived:
 * with nopreempt it stays BACKUP and the VIP stays where it is. The node holding the VIP is
 * patched last, so the VIP moves once per run.
 */
import { sh } from '../shell/quote.js';
import type { PatchGroup } from './policy.js';
import { runOk, sleep, waitUntil, type Remote } from './remote.js';
import type { Strategy } from './strategy.js';

const MOVE_TIMEOUT_MS = 30_000;
/** Long enough for a few adverts (advert_int 1 s): a preempting node would have taken the VIP by then. */
const SETTLE_MS = 3_000;

export function keepalivedVip(remote: Remote, group: PatchGroup): Strategy {
  const vipOf = (host: string): string => {
    const vip = remote.vars(host).vip;
    if (typeof vip !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(vip)) {
      throw new Error(`${host}: strategy keepalived-vip needs the host's vip variable (the haproxy-keepalived role's VIP), got ${JSON.stringify(vip)}`);
    }
    return vip;
  };
  const peersOf = (host: string): string[] => {
    const g = remote.vars(host).keepalived_group;
    return remote.hosts(typeof g === 'string' ? g : 'lb').filter((h) => h !== host);
  };
  const holds = async (host: string, vip: string): Promise<boolean> => (await remote.run(host, sh`ip -4 -o addr show | grep -qF ${` ${vip}/`}`)).code === 0;
  /** Every peer staying in service must be able to hold the VIP: keepalived and haproxy running. */
  async function guardOne(host: string, peers: string[]): Promise<void> {
    if (peers.length === 0) throw new Error(`${host} has no keepalived peer to take the VIP ${vipOf(host)}: patching it is an outage (use strategy none in a downtime)`);
    const ready = await Promise.all(peers.map(async (p) => ({ p, ok: (await remote.run(p, 'systemctl is-active -q keepalived haproxy')).code === 0 })));
    const down = ready.filter((r) => !r.ok).map((r) => r.p);
    if (down.length) throw new Error(`keepalived or haproxy is not running on ${down.join(', ')}: not moving the VIP off ${host} (never two load balancers down at once)`);
  }
  const holders = async (hosts: string[], vip: string): Promise<string[]> => {
    const held = await Promise.all(hosts.map(async (h) => ((await holds(h, vip)) ? h : '')));
    return held.filter(Boolean);
  };

  return {
    describe: 'VIP moved off first (keepalived stopped, a peer takes it), keepalived started again after (nopreempt: the VIP stays)',
    helpers: () => {
      group.hosts.forEach(vipOf);
      return [...new Set(group.hosts.flatMap(peersOf))].filter((h) => !group.hosts.includes(h));
    },
    async order(hosts) {
      const held = await Promise.all(hosts.map(async (h) => ((await holds(h, vipOf(h))) ? h : '')));
      return [...hosts.filter((h) => !held.includes(h)), ...hosts.filter((h) => held.includes(h))];
    },
    async guard(batch) {
      for (const host of batch) await guardOne(host, peersOf(host).filter((p) => !batch.includes(p)));
    },
    async takeOut(host) {
      const vip = vipOf(host);
      const peers = peersOf(host);
      const had = await holds(host, vip);
      await runOk(remote, host, 'systemctl stop keepalived', 'stop keepalived');
      const [to] = await waitUntil(
        () => `the VIP ${vip} did not appear on ${peers.join(' or ')} (keepalived stopped on ${host})`,
        MOVE_TIMEOUT_MS,
        async () => {
          if (await holds(host, vip)) return undefined;
          const on = await holders(peers, vip);
          return on.length === 1 ? on : undefined;
        },
        250,
      );
      return had ? `VIP ${vip} moved to ${to} (keepalived stopped)` : `keepalived stopped; the VIP ${vip} stays on ${to}`;
    },
    async putBack(host) {
      const vip = vipOf(host);
      await runOk(remote, host, 'systemctl is-active -q haproxy', 'haproxy is not running');
      await runOk(remote, host, 'systemctl start keepalived && systemctl is-active -q keepalived', 'start keepalived');
      await sleep(SETTLE_MS);
      const on = await holders([host, ...peersOf(host)], vip);
      if (on.length !== 1) throw new Error(`after starting keepalived on ${host} the VIP ${vip} is on ${on.length ? on.join(' and ') : 'no node'}`);
      return `keepalived started; the VIP ${vip} stays on ${on[0]}`;
    },
  };
}
