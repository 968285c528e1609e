/**
 * vpn: WireGuard on the bastion for operator access. Operators (peers) and their public keys
 * come from the inventory; the server's private key is generated on the bastion and never
 * leaves it (its public key is published in /etc/wireguard/<if>.pub and printed by every
 * run). Where the kernel has no WireGuard (a container on a kernel without the module) the
 * userspace wireguard-go runs it; elsewhere the kernel module does. With `vpn_ssh_only`, the
 * bastion's SSH answers only through the tunnel (and from `vpn_ssh_also_from`, the way infra
 * itself still comes in), refusing everyone else before the hardening firewall's openings.
 */
import { defineRole, z, apt, files, systemd, command, meta, confirm, aide, wireguard, UserError, type Task } from 'infra';

const cidr4 = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'an IPv4 address with its prefix, e.g. 10.99.0.1/24');
const ipv4 = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'an IPv4 address, e.g. 10.99.0.2');
/** A WireGuard key: 32 bytes, base64. */
const wgKey = z.string().regex(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$/, 'a WireGuard public key (44 characters of base64, from `wg pubkey`)');

export const vars = z.object({
  vpn_interface: z.string().regex(/^[a-z][a-z0-9]{0,14}$/).default('wg0').describe('The WireGuard interface'),
  vpn_port: z.number().int().min(1).max(65535).default(51820).describe('UDP port WireGuard listens on (hardening must open it)'),
  vpn_address: cidr4.default('10.99.0.1/24').describe("The bastion's address in the tunnel, with the VPN subnet's prefix"),
  vpn_peers: z
    .array(z.object({ name: z.string().regex(/^[A-Za-z0-9_.@-]+$/), public_key: wgKey, address: ipv4 }).strict())
    .default([])
    .describe('Operators: a name, their public key (they keep the private one), their tunnel address; none = role skipped'),
  vpn_ssh_only: z.boolean().default(false).describe('SSH to this host only through the tunnel (plus vpn_ssh_also_from)'),
  vpn_ssh_also_from: z.array(cidr4).default([]).describe("Sources that may still reach SSH outside the tunnel when vpn_ssh_only is set: infra's own way in"),
  ssh_port: z.number().int().min(1).max(65535).default(22).describe("hardening's SSH port (read)"),
  ssh_allow_from: z.array(z.string()).default([]).describe("hardening's SSH sources (read: must include the VPN subnet)"),
  textfile_dir: z
    .string()
    .regex(/^\/[^\s"'`$\\]+$/)
    .default('/var/lib/prometheus/node-exporter')
    .describe("node exporter's textfile collector directory (the same as hardening's)"),
});

export type VpnVars = z.output<typeof vars>;

const AIDE_HANDLER = 'update aide database';

export default defineRole({
  name: 'vpn',
  vars,
  tasks: ({ vars: v, host, inventory }) => {
    if (v.vpn_peers.length === 0) {
      return [meta.skip({ what: 'WireGuard VPN', reason: 'no vpn_peers in the inventory: there is no operator to serve' })];
    }
    const i = v.vpn_interface;
    const subnet = subnetOf(v.vpn_address);
    checkPeers(v);
    checkFirewall(v, host, inventory, subnet);
    const tasks: Task[] = [
      apt.packages({ names: ['wireguard-tools', 'nftables'] }),
      // The kernel module where there is one; the userspace implementation where there is none
      // (wg-quick falls back to wireguard-go by itself when `ip link add type wireguard` fails).
      command.run({
        name: 'wireguard-go where the kernel has no WireGuard',
        cmd: 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=120 --no-install-recommends wireguard-go',
        unless: "[ -d /sys/module/wireguard ] || modinfo wireguard >/dev/null 2>&1 || dpkg-query -W -f='${Status}' wireguard-go 2>/dev/null | grep -q 'ok installed'",
        timeoutMs: 10 * 60_000,
      }),
      files.directory({ path: '/etc/wireguard', mode: '0700', owner: 'root', group: 'root' }),
      wireguard.key({ privateKey: `/etc/wireguard/${i}.key`, publicKey: `/etc/wireguard/${i}.pub` }),
      systemd.unit({ name: 'wg-quick@.service', dropIn: '10-infra-reload', src: 'wg-quick-reload.conf.hbs' }),
      files.template({ src: 'wg.conf.hbs', dest: `/etc/wireguard/${i}.conf`, mode: '0600', owner: 'root', group: 'root', notify: 'reload wireguard' }),
      systemd.service({ name: `wg-quick@${i}`, enabled: true, state: 'started' }),
      // SSH through the tunnel only: a table of our own, evaluated before hardening's.
      // Commit-confirmed: loaded here, kept only if a new connection of infra still gets in.
      v.vpn_ssh_only
        ? confirm.files({
            files: [{ path: '/etc/nftables.d/vpn.nft', template: 'vpn.nft.hbs', mode: '0640', owner: 'root', group: 'root', vars: { alsoFrom: v.vpn_ssh_also_from } }],
            validate: 'nft -c -f %s',
            activate: 'systemctl reload-or-restart nftables',
            // The old files do not drop a table they lack (a first install): drop ours first then.
            rollback: '[ -e /etc/nftables.d/vpn.nft ] || nft delete table inet infra_vpn 2>/dev/null; systemctl reload-or-restart nftables',
            within: 60,
          })
        : files.absent({ path: '/etc/nftables.d/vpn.nft', notify: 'drop the vpn ssh filter' }),
      // Handshakes and traffic per operator, for Prometheus.
      files.directory({ path: v.textfile_dir, mode: '0755', owner: 'root', group: 'root' }),
      files.template({ src: 'wireguard-metrics.sh.hbs', dest: '/usr/local/sbin/infra-wireguard-metrics', mode: '0755', owner: 'root', group: 'root' }),
      ...systemd.scheduledJob({
        name: 'infra-wireguard-metrics',
        description: 'Export WireGuard peer handshakes for Prometheus (infra vpn)',
        exec: '/usr/local/sbin/infra-wireguard-metrics',
        schedule: 'minutely',
        randomDelay: '5s',
      }),
    ];
    // Files under /etc changed by this role are re-baselined in AIDE at the end of the play.
    return tasks.map((t) => ({ ...t, notify: [...t.notify, AIDE_HANDLER] }));
  },
  handlers: {
    // wg syncconf (the drop-in's ExecReload): peers change, the tunnel stays up.
    'reload wireguard': command.run({ cmd: "systemctl reload 'wg-quick@*.service'" }),
    'drop the vpn ssh filter': command.run({ cmd: 'if nft list table inet infra_vpn >/dev/null 2>&1; then nft delete table inet infra_vpn; fi' }),
    [AIDE_HANDLER]: aide.update({}),
  },
});

/** "10.99.0.1/24" → "10.99.0.0/24". */
export function subnetOf(address: string): string {
  const [ip, bits] = address.split('/');
  const n = ip.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  const net = (n & mask) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${bits}`;
}

function inSubnet(ip: string, subnet: string): boolean {
  return subnetOf(`${ip}/${subnet.split('/')[1]}`) === subnet;
}

function checkPeers(v: VpnVars): void {
  const subnet = subnetOf(v.vpn_address);
  const seen = new Map<string, string>();
  for (const p of v.vpn_peers) {
    if (!inSubnet(p.address, subnet) || p.address === v.vpn_address.split('/')[0]) {
      throw new UserError(`vpn_peers: ${p.name}'s address ${p.address} is not a free address of the VPN subnet ${subnet}`, {
        hint: `give each operator an address of ${subnet} other than the bastion's ${v.vpn_address.split('/')[0]}`,
      });
    }
    for (const [what, key] of [['address', p.address], ['public key', p.public_key]]) {
      const other = seen.get(`${what}:${key}`);
      if (other) throw new UserError(`vpn_peers: ${p.name} and ${other} have the same ${what}`, { hint: 'every operator has an address and a key of their own' });
      seen.set(`${what}:${key}`, p.name);
    }
  }
}

/**
 * Lockout and dead-tunnel safety, before anything changes: the hardening firewall must open
 * the WireGuard port and let the VPN subnet reach SSH, and with vpn_ssh_only infra itself must
 * keep a way in (the tunnel, or vpn_ssh_also_from).
 */
function checkFirewall(
  v: VpnVars,
  host: { name: string; groups: string[] },
  inventory: { hosts: Map<string, { vars: Record<string, unknown>; conn: { address: string } }>; groups: Map<string, { vars: Record<string, unknown> }> },
  subnet: string,
): void {
  const spec = inventory.hosts.get(host.name)!;
  const firewall = spec.vars.firewall as { enabled?: boolean } | undefined;
  if (firewall?.enabled === false) return;
  const rules = [...host.groups.map((g) => inventory.groups.get(g)?.vars), spec.vars].flatMap(
    (vars) => ((vars?.firewall as { allow?: unknown[] } | undefined)?.allow ?? []) as { port?: unknown; proto?: unknown }[],
  );
  if (!rules.some((r) => r.proto === 'udp' && String(r.port) === String(v.vpn_port))) {
    throw new UserError(`vpn: the hardening firewall does not open udp ${v.vpn_port} on ${host.name}: no operator could reach WireGuard`, {
      hint: `add to the bastion's group_vars: firewall: { allow: [ { port: ${v.vpn_port}, proto: udp, from: [any], comment: wireguard } ] }`,
    });
  }
  const allowed = v.ssh_allow_from;
  if (allowed.length > 0 && !allowed.includes(subnet) && !allowed.includes('any')) {
    throw new UserError(`vpn: ssh_allow_from on ${host.name} does not include the VPN subnet ${subnet}: SSH through the tunnel would be dropped`, {
      hint: `add ${subnet} to ssh_allow_from (group_vars of the bastion)`,
    });
  }
  if (v.vpn_ssh_only && !inSubnet(spec.conn.address, subnet) && v.vpn_ssh_also_from.length === 0) {
    throw new UserError(
      `vpn: vpn_ssh_only would lock infra out of ${host.name}: it connects to ${spec.conn.address}, outside the tunnel, and vpn_ssh_also_from is empty`,
      { hint: `first connect through the tunnel (the bastion's address: ${v.vpn_address.split('/')[0]}), or list infra's source in vpn_ssh_also_from` },
    );
  }
}
