/**
 * The network diagram as a graph (pure), written as Graphviz DOT and as Mermaid: hosts in
 * tier boxes, the VIP beside the hosts that carry it, the path infra connects by (controller →
 * bastion → hosts), and every flow the installed firewall rules allow. Flows between tiers are
 * drawn box to box; flows inside a tier host to host; a flow to or from every other host
 * (node exporter scrapes, SSH from the bastion, log shipping) goes to one "every host" node.
 * Graphviz lays it out (graphviz.ts); nothing here places anything.
 */
import type { Site, SiteHost } from './site.js';
import { compareServices } from './matrix.js';

export interface Graph {
  clusters: { id: string; label: string; parent?: string }[];
  nodes: { id: string; label: string; kind: 'host' | 'vip' | 'external' | 'controller' | 'every'; cluster?: string }[];
  /** `from`/`to`: a node or a cluster id. */
  edges: { from: string; to: string; labels: string[]; kind: 'flow' | 'path' | 'vip'; both?: boolean }[];
}

const CONTROLLER = 'controller';
const EVERY = 'every_host';
const INTERNET = 'internet';

export function networkGraph(site: Site): Graph {
  const clusters: Graph['clusters'] = [];
  for (const h of site.hosts) {
    const { tier } = h;
    if (tier.parent && !clusters.some((c) => c.id === tier.parent!.id)) clusters.push({ id: tier.parent.id, label: tier.parent.label });
    if (!clusters.some((c) => c.id === tier.id)) clusters.push({ id: tier.id, label: tier.label, parent: tier.parent?.id });
  }
  const nodes: Graph['nodes'] = [{ id: CONTROLLER, label: 'infra (controller)', kind: 'controller' }];
  for (const h of site.hosts) {
    const reach = h.bastion ? '' : `\nssh ${h.address}:${h.port}`;
    nodes.push({ id: hostId(h.name), label: `${h.name}\n${h.privateAddress}${reach}`, kind: 'host', cluster: h.tier.id });
  }
  const edges = new EdgeSet();

  // The VIP: beside the hosts that carry it.
  for (const vip of [...new Set(site.hosts.flatMap((h) => (h.vip ? [h.vip] : [])))]) {
    const holders = site.hosts.filter((h) => h.vip === vip);
    nodes.push({ id: safeId(`vip_${vip}`), label: `VIP ${vip}`, kind: 'vip', cluster: holders[0].tier.id });
    for (const h of holders) edges.add(safeId(`vip_${vip}`), hostId(h.name), '', 'vip');
  }

  // How infra connects: controller → directly reached hosts → the hosts behind each of them.
  const leaves = clusterMembers(site.hosts);
  for (const h of site.hosts.filter((x) => !x.bastion)) edges.add(CONTROLLER, hostId(h.name), `ssh ${h.address}:${h.port}`, 'path');
  const wide = site.hosts.length > 2;
  for (const jump of site.hosts) {
    const behind = site.hosts.filter((h) => h.bastion === jump.name);
    if (!behind.length) continue;
    const everyOther = wide && covers(site.hosts, jump.tier.id, new Set(behind.map((h) => h.name)));
    const byTier = [...clusterMembers(behind)].flatMap(([tier, members]) => ends(members, tier, leaves));
    for (const to of everyOther ? [EVERY] : byTier) edges.add(hostId(jump.name), to, 'ssh (jump)', 'path');
  }

  // The firewall: who may reach what, as (source, target, service); a source outside the inventory is a node of its own.
  const byAddress = new Map(site.hosts.map((h) => [h.privateAddress, h] as const));
  const tierOfHost = new Map(site.hosts.map((h) => [h.name, h.tier.id]));
  const flows = new Map<string, Flow>();
  for (const fw of site.firewall.hosts) {
    for (const g of fw.grants) {
      for (const address of g.sources) {
        const host = byAddress.get(address);
        const src = host ? host.name : address === 'any' ? INTERNET : safeId(`net_${address}`);
        if (!host && !nodes.some((n) => n.id === src)) nodes.push({ id: src, label: address === 'any' ? 'any (internet)' : address, kind: 'external' });
        const flow = { src, srcTier: host?.tier.id, dst: fw.host, dstTier: tierOfHost.get(fw.host)!, service: g.service };
        flows.set(JSON.stringify([src, fw.host, g.service]), flow);
      }
    }
  }
  let rest = [...flows.values()];
  // What a tier sends on one service to every other host: one edge to "every host".
  for (const block of blocks(rest, (f) => [f.srcTier ?? f.src, f.service])) {
    const { sources, targets } = block;
    if (!wide || !block.product || !covers(site.hosts, block.flows[0].srcTier, new Set(targets))) continue;
    for (const from of ends(sources, block.flows[0].srcTier, leaves)) edges.add(from, EVERY, block.flows[0].service, 'flow');
    rest = rest.filter((f) => !block.flows.includes(f));
  }
  // What a tier receives on one service from every other host: one edge from "every host".
  for (const block of blocks(rest.filter((f) => f.srcTier), (f) => [f.dstTier, f.service])) {
    const { sources, targets } = block;
    if (!wide || !block.product || !covers(site.hosts, block.flows[0].dstTier, new Set(sources))) continue;
    for (const to of ends(targets, block.flows[0].dstTier, leaves)) edges.add(EVERY, to, block.flows[0].service, 'flow');
    rest = rest.filter((f) => !block.flows.includes(f));
  }
  // The rest: box to box where whole boxes take part, host to host otherwise (always inside a box).
  for (const block of blocks(rest, (f) => [f.srcTier ?? f.src, f.dstTier, f.service])) {
    const { srcTier, dstTier, service } = block.flows[0];
    if (block.product && srcTier !== dstTier) {
      for (const from of ends(block.sources, srcTier, leaves)) for (const to of ends(block.targets, dstTier, leaves)) edges.add(from, to, service, 'flow');
    } else {
      for (const f of block.flows) if (f.src !== f.dst) edges.add(f.srcTier ? hostId(f.src) : f.src, hostId(f.dst), service, 'flow');
    }
  }
  if (edges.touches(EVERY)) nodes.push({ id: EVERY, label: 'every host', kind: 'every' });
  return { clusters, nodes, edges: edges.list() };
}

/** One allowed flow: a source (a host, or an external node id), the host that lets it in, a service. */
interface Flow {
  src: string;
  /** undefined: a source outside the inventory. */
  srcTier?: string;
  dst: string;
  dstTier: string;
  service: string;
}

/**
 * Flows grouped by a key (in first-seen order), with their sources and targets, and whether
 * every source reaches every target (only then can the block be drawn as one edge).
 */
function blocks(flows: Flow[], key: (f: Flow) => unknown[]): { flows: Flow[]; sources: string[]; targets: string[]; product: boolean }[] {
  const groups = new Map<string, Flow[]>();
  for (const f of flows) {
    const k = JSON.stringify(key(f));
    groups.set(k, [...(groups.get(k) ?? []), f]);
  }
  return [...groups.values()].map((fs) => {
    const sources = [...new Set(fs.map((f) => f.src))];
    const targets = [...new Set(fs.map((f) => f.dst))];
    return { flows: fs, sources, targets, product: fs.length === sources.length * targets.length };
  });
}

/** Hosts per tier, in inventory order. */
function clusterMembers(hosts: readonly SiteHost[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const h of hosts) out.set(h.tier.id, [...(out.get(h.tier.id) ?? []), h.name]);
  return out;
}

/** Whether `targets` holds every host outside `tier` (the source's own tier may be left out). */
function covers(hosts: SiteHost[], tier: string | undefined, targets: Set<string>): boolean {
  return hosts.every((h) => targets.has(h.name) || h.tier.id === tier) && targets.size > 1;
}

/** Where edges to or from some hosts of a tier end: its box when they are all of it, else each host (an external node as it is). */
function ends(members: string[], tier: string | undefined, leaves: Map<string, string[]>): string[] {
  if (!tier) return members;
  return leaves.get(tier)!.every((m) => members.includes(m)) ? [nodeOrCluster(tier, leaves)] : members.map(hostId);
}

/** A tier with one host is drawn to that host; a larger one to its box. */
function nodeOrCluster(tier: string, leaves: Map<string, string[]>): string {
  const members = leaves.get(tier);
  return members?.length === 1 ? hostId(members[0]) : clusterId(tier);
}

const clusterId = (tier: string): string => safeId(`cluster_${tier}`);

const hostId = (name: string): string => safeId(`host_${name}`);

/** Node ids both DOT and Mermaid take as they are: letters, digits and "_" (others as _hex). */
const safeId = (s: string): string => s.replace(/[^A-Za-z0-9_]/g, (c) => `_${c.charCodeAt(0).toString(16)}`);

/** Edges keyed by their ends; labels gathered, sorted; a path edge keeps its look when flows join it. */
class EdgeSet {
  private readonly edges = new Map<string, Graph['edges'][number]>();
  add(from: string, to: string, label: string, kind: Graph['edges'][number]['kind']): void {
    const key = `${from}\0${to}`;
    const e = this.edges.get(key) ?? { from, to, labels: [], kind };
    if (label && !e.labels.includes(label)) e.labels.push(label);
    if (kind === 'path') e.kind = 'path';
    this.edges.set(key, e);
  }
  touches(id: string): boolean {
    return [...this.edges.values()].some((e) => e.from === id || e.to === id);
  }
  /** Labels sorted; a pair of opposite edges with the same labels becomes one edge both ways (lb1 ↔ lb2: vrrp). */
  list(): Graph['edges'] {
    const rank = (l: string) => (/^ssh/.test(l) ? 0 : 1);
    const sorted = [...this.edges.values()].map((e) => ({ ...e, labels: [...e.labels].sort((a, b) => rank(a) - rank(b) || compareServices(a, b)) }));
    const out: Graph['edges'] = [];
    for (const e of sorted) {
      const twin = out.find((x) => x.from === e.to && x.to === e.from && x.kind === e.kind && x.labels.join() === e.labels.join());
      if (twin && e.kind !== 'vip') twin.both = true;
      else out.push(e);
    }
    return out;
  }
}

// ---- DOT -------------------------------------------------------------------------------

const FILL: Record<string, string> = {
  bastion: '#fdecea',
  edge: '#e8f0fe',
  api: '#e6f4ea',
  data: '#fafafa',
  postgres: '#fef7e0',
  redis: '#fce8e6',
  monitoring: '#f3e8fd',
  backup: '#e8eaed',
  other: '#ffffff',
};

const dq = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

export function toDot(g: Graph, title: string): string {
  const out = [
    `digraph ${dq(title)} {`,
    `  graph [compound=true, rankdir=LR, newrank=true, nodesep=0.25, ranksep=1.1, fontname="Helvetica", fontsize=12, label=${dq(title)}, labelloc=t];`,
    '  node [fontname="Helvetica", fontsize=10, shape=box, style="rounded,filled", fillcolor="#ffffff", color="#5f6368"];',
    '  edge [fontname="Helvetica", fontsize=9, color="#80868b", fontcolor="#3c4043", arrowsize=0.7];',
  ];
  const node = (n: Graph['nodes'][number], indent: string) => {
    const shape =
      n.kind === 'vip' ? 'shape=ellipse, style="dashed,filled", fillcolor="#ffffff"'
        : n.kind === 'controller' ? 'shape=component, fillcolor="#d2e3fc"'
          : n.kind === 'external' ? 'shape=box, style=filled, fillcolor="#f1f3f4"'
            : n.kind === 'every' ? 'shape=box, style="rounded,dashed"'
              : '';
    out.push(`${indent}${dq(n.id)} [label=${dq(n.label)}${shape ? `, ${shape}` : ''}];`);
  };
  const cluster = (c: Graph['clusters'][number], indent: string) => {
    out.push(`${indent}subgraph ${dq(clusterId(c.id))} {`);
    out.push(`${indent}  label=${dq(c.label)}; style="rounded,filled"; fillcolor=${dq(FILL[c.id] ?? '#ffffff')}; color="#bdc1c6";`);
    for (const child of g.clusters.filter((x) => x.parent === c.id)) cluster(child, `${indent}  `);
    const members = g.nodes.filter((x) => x.cluster === c.id);
    for (const n of members) node(n, `${indent}  `);
    // A tier is one column: its hosts side by side, whatever the edges pull.
    if (members.length > 1) out.push(`${indent}  { rank=same; ${members.map((n) => dq(n.id)).join('; ')}; }`);
    out.push(`${indent}}`);
  };
  for (const n of g.nodes.filter((x) => !x.cluster)) node(n, '  ');
  for (const c of g.clusters.filter((x) => !x.parent)) cluster(c, '  ');
  // An edge to a box: drawn to its first node, clipped at the box (lhead/ltail).
  const anchor = (id: string) => (id.startsWith('cluster_') ? g.nodes.find((n) => clusterId(n.cluster!) === id)!.id : id);
  for (const e of g.edges) {
    const attrs = e.labels.length ? [`label=${dq(wrap(e.labels))}`] : [];
    if (e.from.startsWith('cluster_')) attrs.push(`ltail=${dq(e.from)}`);
    if (e.to.startsWith('cluster_')) attrs.push(`lhead=${dq(e.to)}`);
    if (e.kind === 'path') attrs.push('color="#1a73e8"', 'fontcolor="#1a73e8"', 'penwidth=1.6');
    if (e.kind === 'vip') attrs.push('style=dashed', 'arrowhead=none');
    if (e.both) attrs.push('dir=both');
    out.push(`  ${dq(anchor(e.from))} -> ${dq(anchor(e.to))} [${attrs.join(', ')}];`);
  }
  out.push('}');
  return out.join('\n') + '\n';
}

/** Three services per line keeps edge labels narrow. */
function wrap(labels: string[]): string {
  const lines: string[] = [];
  for (let i = 0; i < labels.length; i += 3) lines.push(labels.slice(i, i + 3).join(', '));
  return lines.join('\n');
}

// ---- Mermaid ---------------------------------------------------------------------------

const mq = (s: string): string => `"${s.replace(/"/g, '#quot;').replace(/\n/g, '<br>')}"`;

export function toMermaid(g: Graph): string {
  const out = ['flowchart LR'];
  const node = (n: Graph['nodes'][number], indent: string) => {
    const [open, close] = n.kind === 'vip' ? ['([', '])'] : n.kind === 'external' ? ['{{', '}}'] : n.kind === 'controller' ? ['[/', '/]'] : ['[', ']'];
    out.push(`${indent}${n.id}${open}${mq(n.label)}${close}`);
  };
  const cluster = (c: Graph['clusters'][number], indent: string) => {
    out.push(`${indent}subgraph ${clusterId(c.id)}[${mq(c.label)}]`);
    for (const child of g.clusters.filter((x) => x.parent === c.id)) cluster(child, `${indent}  `);
    for (const n of g.nodes.filter((x) => x.cluster === c.id)) node(n, `${indent}  `);
    out.push(`${indent}end`);
  };
  for (const n of g.nodes.filter((x) => !x.cluster)) node(n, '  ');
  for (const c of g.clusters.filter((x) => !x.parent)) cluster(c, '  ');
  for (const e of g.edges) {
    const arrow = e.kind === 'vip' ? '-.-' : e.kind === 'path' ? '==>' : e.both ? '<-->' : '-->';
    out.push(`  ${e.from} ${arrow}${e.labels.length ? `|${mq(e.labels.join(', '))}|` : ''} ${e.to}`);
  }
  return out.join('\n') + '\n';
}
