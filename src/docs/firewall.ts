/**
 * Each host's firewall as the role that installs it computes it. A role that manages the host
 * firewall exports `firewallOpenings` (the openings a host gets, as the inventory declares
 * them) and `resolveRules` (those openings → the nftables rules it installs): roles/hardening
 * does. The documents call the same two functions the role's tasks call, with the same
 * validated variables, so they cannot disagree with the hosts. The role is loaded at run time
 * like every role (from the playbook), never imported by src/.
 */
import { roleModuleUrl } from '../playbook/role-import.js';
import { selectHosts } from '../inventory/limit.js';
import { mergeVars } from '../inventory/vars.js';
import type { Inventory } from '../inventory/types.js';
import type { HostView } from '../modules/types.js';
import { validateRoleVars, type RoleDef } from '../playbook/role.js';
import type { Play } from '../playbook/schema.js';
import { privateAddress } from '../cluster/members.js';

/** One opening as declared: `{ port: 5432, from: [api], comment: postgresql }`. */
export interface Opening {
  port?: number | string;
  proto?: string;
  from: string[];
  comment?: string;
}

/** One installed rule: sources as addresses, `match` as nftables writes it. */
export interface NftRule {
  comment: string;
  /** What the rule matches after the source: "tcp dport 443", "meta l4proto 112". */
  match: string;
  sources4: string[];
  sources6: string[];
  any: boolean;
}

type Hosts = (pattern: string) => HostView[];

interface FirewallExports {
  firewallOpenings(ctx: { vars: unknown; host: { name: string; groups: string[] }; hosts: Hosts; inventory: Inventory }): Opening[] | null;
  resolveRules(rules: Opening[], hosts: Hosts): NftRule[];
}

/** One name of an opening's `from`, resolved: who may reach `service` on the host. */
export interface Grant {
  /** "tcp/5432", "udp/53", "tcp/60000-61000", "vrrp". */
  service: string;
  /** The nftables match of the rule it belongs to ("tcp dport 5432"). */
  match: string;
  /** As declared (a group, a host, an address, "any"); an address of an inventory host is shown as that host. */
  from: string;
  /** Addresses the rule lets in, or ["any"]. */
  sources: string[];
  comment: string;
}

export interface HostFirewall {
  host: string;
  /** The role that installs it. */
  role: string;
  /** false: the role leaves this host's firewall alone (firewall.enabled: false). */
  managed: boolean;
  /** The rules installed, in the role's order. */
  rules: NftRule[];
  grants: Grant[];
}

export interface SiteFirewall {
  /** Roles whose firewall is documented (normally ["hardening"]). */
  roles: string[];
  /** Hosts a firewall role applies to, in inventory order. */
  hosts: HostFirewall[];
}

/** The host views a role's `hosts(pattern)` sees (no facts: firewalls do not depend on them). */
export function hostViews(inventory: Inventory): Hosts {
  return (pattern) =>
    selectHosts(inventory, pattern).map((name) => {
      const h = inventory.hosts.get(name)!;
      return { name, address: h.conn.address, groups: h.groups, vars: h.vars };
    });
}

/**
 * Every host's firewall from the plays: for each host, the last play that applies a firewall
 * role to it decides (as on the host, where the last apply wins). Role variables are merged
 * and validated as a run does (inventory < play vars < the role's vars in the play).
 */
export async function siteFirewall(inventory: Inventory, plays: Play[]): Promise<SiteFirewall> {
  const hosts = hostViews(inventory);
  const exportsOf = new Map<string, FirewallExports | undefined>();
  const chosen = new Map<string, { role: RoleDef; exports: FirewallExports; vars: unknown }>();
  for (const play of plays) {
    for (const ref of play.roles) {
      if (!exportsOf.has(ref.role.name)) exportsOf.set(ref.role.name, await firewallExports(ref.role));
      const exports = exportsOf.get(ref.role.name);
      if (!exports) continue;
      for (const name of selectHosts(inventory, play.hosts)) {
        const spec = inventory.hosts.get(name)!;
        const vars = validateRoleVars(ref.role, mergeVars([spec.vars, play.vars, ref.vars]), spec.provenance);
        chosen.set(name, { role: ref.role, exports, vars });
      }
    }
  }
  const out: HostFirewall[] = [];
  for (const [name, spec] of inventory.hosts) {
    const c = chosen.get(name);
    if (!c) continue;
    const openings = c.exports.firewallOpenings({ vars: c.vars, host: { name, groups: spec.groups }, hosts, inventory });
    out.push({
      host: name,
      role: c.role.name,
      managed: openings !== null,
      rules: openings ? c.exports.resolveRules(openings, hosts) : [],
      grants: openings ? grantsOf(openings, inventory, hosts, c.exports) : [],
    });
  }
  return { roles: [...new Set(out.map((h) => h.role))].sort(), hosts: out };
}

/** The module of a role, when it exports what documenting a firewall takes (the module is already loaded: same instance). */
async function firewallExports(role: RoleDef): Promise<FirewallExports | undefined> {
  const mod = (await import(await roleModuleUrl(role.file))) as Partial<FirewallExports>;
  return typeof mod.firewallOpenings === 'function' && typeof mod.resolveRules === 'function' ? (mod as FirewallExports) : undefined;
}

/** Each opening, one `from` name at a time, through the role's own resolveRules. */
function grantsOf(openings: Opening[], inventory: Inventory, hosts: Hosts, fw: FirewallExports): Grant[] {
  const byAddress = hostsByAddress(inventory);
  const out: Grant[] = [];
  for (const o of openings) {
    for (const from of o.from) {
      // A name that resolves to no host opens nothing: the role installs no rule for it either.
      const [rule] = fw.resolveRules([{ ...o, from: [from] }], hosts);
      if (!rule) continue;
      const host = byAddress.get(from.replace(/\/(32|128)$/, ''));
      out.push({
        service: serviceOf(o),
        match: rule.match,
        from: host?.length === 1 ? host[0] : from,
        sources: rule.any ? ['any'] : [...rule.sources4, ...rule.sources6],
        comment: o.comment ?? '',
      });
    }
  }
  return out;
}

/** "tcp/5432", or the protocol alone when it has no ports ("vrrp"). */
export function serviceOf(o: Pick<Opening, 'port' | 'proto'>): string {
  const proto = o.proto ?? 'tcp';
  return o.port === undefined ? proto : `${proto}/${o.port}`;
}

/** The address other hosts see (private_address, else address) → the hosts that have it. */
export function hostsByAddress(inventory: Inventory): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, h] of inventory.hosts) {
    const a = privateAddress({ address: h.conn.address, vars: h.vars });
    out.set(a, [...(out.get(a) ?? []), name]);
  }
  return out;
}
