/**
 * The firewall matrix (from × to × port) and each host's rules, from the grants the firewall
 * role's own functions computed (firewall.ts). Sources keep the names the inventory declares
 * (`api`, `monitoring`, `any`); targets are named by the smallest inventory description of the
 * hosts that hold the rule (a group, "all", "all:!bastion", or the hosts themselves).
 */
import { selectHosts } from '../inventory/limit.js';
import type { Inventory } from '../inventory/types.js';
import type { Site } from './site.js';
import { code, generatedBy, table } from './markdown.js';

export interface MatrixRow {
  from: string;
  to: string;
  service: string;
  comment: string;
  /** Hosts whose firewall holds the rule, in inventory order. */
  toHosts: string[];
  /** Addresses let in (sorted), or ["any"]. */
  sources: string[];
}

export function matrixRows(site: Site): MatrixRow[] {
  const byKey = new Map<string, { from: string; service: string; comment: string; toHosts: Set<string>; sources: Set<string> }>();
  for (const fw of site.firewall.hosts) {
    for (const g of fw.grants) {
      const key = JSON.stringify([g.from, g.service, g.comment]);
      const row = byKey.get(key) ?? { from: g.from, service: g.service, comment: g.comment, toHosts: new Set(), sources: new Set() };
      row.toHosts.add(fw.host);
      g.sources.forEach((s) => row.sources.add(s));
      byKey.set(key, row);
    }
  }
  const rank = labelRank(site.inventory);
  const order = [...site.inventory.hosts.keys()];
  return [...byKey.values()]
    .map((r) => {
      const toHosts = order.filter((h) => r.toHosts.has(h));
      return { from: r.from, to: describeHosts(site.inventory, toHosts), service: r.service, comment: r.comment, toHosts, sources: [...r.sources].sort(compareAddresses) };
    })
    .sort((a, b) => rank(a.to) - rank(b.to) || compareServices(a.service, b.service) || rank(a.from) - rank(b.from) || cmp(a.from, b.from) || cmp(a.comment, b.comment));
}

export function firewallPage(site: Site, command: string): string {
  const rows = matrixRows(site);
  const rank = labelRank(site.inventory);
  const sortLabels = (labels: Iterable<string>) => [...new Set(labels)].sort((a, b) => rank(a) - rank(b) || cmp(a, b));
  const froms = sortLabels(rows.map((r) => r.from));
  const tos = sortLabels(rows.map((r) => r.to));
  const managed = site.firewall.hosts.filter((h) => h.managed);
  const unmanaged = site.hosts.filter((h) => !managed.some((m) => m.host === h.name)).map((h) => h.name);
  const out: string[] = [generatedBy(command), '', `# Firewall: \`${site.env}\``, ''];
  if (!site.firewall.roles.length) {
    out.push(`No play of \`${site.playbook}\` applies a role that manages the host firewall (a role exporting \`firewallOpenings\` and \`resolveRules\`, as \`hardening\` does).`, '');
    return out.join('\n');
  }
  out.push(
    `What each host's firewall lets in, as ${site.firewall.roles.map((r) => `\`${r}\``).join(', ')} installs it (nftables, default drop; loopback, established connections and ICMP are always accepted), computed by the role's own \`firewallOpenings\` and \`resolveRules\`: this page and the hosts cannot disagree.`,
    '',
  );
  if (unmanaged.length) out.push(`Not managed by infra (no firewall role, or \`firewall.enabled: false\`): ${unmanaged.map(code).join(', ')}.`, '');
  out.push('## Matrix', '', 'Rows: who connects (as the inventory names them). Columns: the hosts that accept.', '');
  out.push(
    table(
      ['from ↓ to →', ...tos.map(code)],
      froms.map((f) => [code(f), ...tos.map((t) => rows.filter((r) => r.from === f && r.to === t).map((r) => r.service).filter((s, i, a) => a.indexOf(s) === i).join(', '))]),
    ),
    '',
  );
  out.push('## Flows', '', 'Each opening with the addresses its rule holds (`to` = the hosts whose firewall has it).', '');
  out.push(table(['from', 'to', 'port', 'comment', 'sources'], rows.map((r) => [code(r.from), code(r.to), code(r.service), r.comment, r.sources.join(', ')])), '');
  out.push('## Rules per host', '', "Each host's input rules as nftables holds them (`nft list table inet infra_filter`).", '');
  for (const fw of managed) {
    const h = site.hosts.find((x) => x.name === fw.host)!;
    const service = new Map(fw.grants.map((g) => [g.match, g.service]));
    out.push(`### ${fw.host} (${h.privateAddress})`, '');
    out.push(table(['port', 'sources', 'comment'], fw.rules.map((r) => [code(service.get(r.match) ?? r.match), r.any ? 'any' : [...r.sources4, ...r.sources6].join(', '), r.comment])), '');
  }
  return out.join('\n');
}

/**
 * The shortest inventory name for a set of hosts: "all", a group with exactly those hosts
 * (the first declared), "all:!group", else the host names.
 */
export function describeHosts(inventory: Inventory, hosts: string[]): string {
  const all = [...inventory.hosts.keys()];
  const set = new Set(hosts);
  const same = (xs: string[], s: Set<string>) => xs.length === s.size && xs.every((x) => s.has(x));
  if (same(all, set)) return 'all';
  for (const g of inventory.groups.keys()) if (g !== 'all' && same(selectHosts(inventory, g), set)) return g;
  const rest = new Set(all.filter((h) => !set.has(h)));
  for (const g of inventory.groups.keys()) if (g !== 'all' && same(selectHosts(inventory, g), rest)) return `all:!${g}`;
  return hosts.join(', ');
}

/** Order of labels: any, all, groups (inventory order), all:!group, hosts (inventory order), then the rest. */
function labelRank(inventory: Inventory): (label: string) => number {
  const groups = [...inventory.groups.keys()].filter((g) => g !== 'all');
  const hosts = [...inventory.hosts.keys()];
  return (label) => {
    if (label === 'any') return 0;
    if (label === 'all') return 1;
    if (groups.includes(label)) return 2 + groups.indexOf(label);
    if (label.startsWith('all:!') && groups.includes(label.slice(5))) return 1000 + groups.indexOf(label.slice(5));
    if (hosts.includes(label)) return 2000 + hosts.indexOf(label);
    return 10_000;
  };
}

/** tcp before udp before portless; ports numerically (a range by its start). */
export function compareServices(a: string, b: string): number {
  const parse = (s: string) => {
    const [proto, port] = s.split('/');
    return { proto, port: port === undefined ? -1 : Number(port.split('-')[0]) };
  };
  const x = parse(a);
  const y = parse(b);
  return cmp(x.proto, y.proto) || x.port - y.port || cmp(a, b);
}

/** IPv4 numerically (CIDRs after their address), then everything else as text. */
function compareAddresses(a: string, b: string): number {
  const key = (s: string) => {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\/(\d+))?$/.exec(s);
    return m ? m.slice(1, 5).map(Number).concat(m[5] === undefined ? -1 : Number(m[5])) : undefined;
  };
  const x = key(a);
  const y = key(b);
  if (x && y) return x.map((v, i) => v - y[i]).find((d) => d !== 0) ?? 0;
  return x ? -1 : y ? 1 : cmp(a, b);
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
