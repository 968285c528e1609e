/**
 * The Keepalived side of the role as pure functions: one VRRP instance for the VIP, unicast
 * to the other hosts of the group, priorities from inventory order.
 *
 * Failover-safe by construction: every node starts as BACKUP with `nopreempt`, so a node that
 * comes back (haproxy restarted by a re-converge, a reboot) never takes the VIP from the node
 * holding it; and the rendered file depends on the inventory only, never on who holds the VIP
 * now, so re-applying changes nothing and reloads nothing.
 */
import { z, UserError, Secret, privateAddress, type HostView } from 'infra';

const ipv4 = z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/, 'an IPv4 address');

export const keepalivedVars = z.object({
  /** The floating address clients use (DNS points here). */
  vip: ipv4,
  vip_prefix: z.number().int().min(1).max(32).default(32),
  /** The hosts sharing the VIP. */
  keepalived_group: z.string().min(1).default('lb'),
  /** VRRP router id: unique among the VRRP routers of the network segment. */
  keepalived_router_id: z.number().int().min(1).max(255).default(51),
  /** VRRPv2 PASS authentication, from the vault (at most 8 characters; the real fence is the firewall). */
  keepalived_auth_pass: z
    .custom<Secret>((v) => v instanceof Secret, 'must be a vault value (!vault ..., made with `infra vault encrypt-string`)')
    .refine((s) => s.reveal().length >= 1 && s.reveal().length <= 8, 'keepalived uses at most 8 characters of auth_pass: give 1 to 8')
    .optional(),
  /** Initial election only (nopreempt): default 150 for the group's first host, 140, 130, ... */
  keepalived_priority: z.number().int().min(1).max(254).optional(),
  /** The interface carrying the VIP; default: the host's default-route interface (facts). */
  keepalived_interface: z.string().regex(/^[A-Za-z0-9_.@-]+$/).optional(),
  keepalived_advert_int: z.number().int().min(1).max(255).default(1),
  /** The haproxy check: every `interval` s; `fall` failures → FAULT (the VIP moves), `rise` successes → back. */
  keepalived_check: z
    .object({ interval: z.number().int().min(1).default(1), fall: z.number().int().min(1).default(2), rise: z.number().int().min(1).default(2) })
    .strict()
    .default({}),
});

export interface VrrpModel {
  priority: number;
  interface: string;
  sourceAddress: string;
  peers: string[];
}

/** This host's VRRP instance: its priority, source address and the addresses of its peers. */
export function vrrpModel(
  v: { vip: string; keepalived_group: string; keepalived_priority?: number; keepalived_interface?: string },
  self: HostView,
  iface: string | undefined,
  hosts: (pattern: string) => HostView[],
): VrrpModel {
  const members = hosts(v.keepalived_group);
  const index = members.findIndex((h) => h.name === self.name);
  if (index < 0) {
    throw new UserError(`${self.name} is not in keepalived_group "${v.keepalived_group}": it cannot share the VIP ${v.vip}`, {
      hint: `run the role on the hosts of ${v.keepalived_group} only, or set keepalived_group`,
    });
  }
  const clash = members.find((h) => privateAddress(h) === v.vip);
  if (clash) throw new UserError(`vip ${v.vip} is the address of ${clash.name}`, { hint: 'the VIP must be an unused address of the hosts’ network' });
  const ifname = v.keepalived_interface ?? iface;
  if (!ifname) {
    throw new UserError(`${self.name}: no default-route interface in facts to carry the VIP`, { hint: 'set keepalived_interface (e.g. eth0) for this host' });
  }
  return {
    priority: v.keepalived_priority ?? Math.max(1, 150 - 10 * index),
    interface: ifname,
    sourceAddress: privateAddress(self),
    peers: members.filter((h) => h.name !== self.name).map(privateAddress),
  };
}
