/**
 * The network diagram: tiers, the VIP, the bastion path and the allowed flows, as a graph;
 * its DOT is laid out by Graphviz (wasm) into an SVG, and its Mermaid has every node.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSite, type Site } from '../../../src/docs/site.js';
import { networkGraph, toDot, toMermaid, type Graph } from '../../../src/docs/diagram.js';
import { renderSvg } from '../../../src/docs/graphviz.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
let lab: Site;
let g: Graph;
beforeAll(async () => {
  lab = await loadSite({ cwd: REPO, inventory: 'lab' });
  g = networkGraph(lab);
});

const edge = (from: string, to: string) => g.edges.find((e) => e.from === from && e.to === to);

describe('network graph of the lab', () => {
  it('hosts are grouped by tier: edge, api, data (postgres, redis), monitoring, backup, bastion', () => {
    const tierOf = (host: string) => g.nodes.find((n) => n.id === `host_${host}`)!.cluster;
    expect(['lb1', 'lb2'].map(tierOf)).toEqual(['edge', 'edge']);
    expect(['api1', 'db1', 'redis2', 'mon1', 'backup1', 'bastion'].map(tierOf)).toEqual(['api', 'postgres', 'redis', 'monitoring', 'backup', 'bastion']);
    expect(g.clusters.filter((c) => c.parent === 'data').map((c) => c.id)).toEqual(['postgres', 'redis']);
  });

  it('the VIP sits in the edge tier, tied to the hosts that carry it', () => {
    const vip = g.nodes.find((n) => n.kind === 'vip')!;
    expect(vip).toMatchObject({ label: 'VIP 172.28.77.10', cluster: 'edge' });
    expect(g.edges.filter((e) => e.from === vip.id).map((e) => e.to)).toEqual(['host_lb1', 'host_lb2']);
  });

  it('the bastion path: controller → bastion (its published address) → every host over SSH', () => {
    expect(edge('controller', 'host_bastion')).toMatchObject({ kind: 'path', labels: ['ssh 127.0.0.1:2222'] });
    expect(edge('host_bastion', 'every_host')).toMatchObject({ kind: 'path', labels: ['ssh (jump)', 'tcp/22'] });
  });

  it('flows from the resolved rules: monitoring → *:9100, every host → journal-remote, VRRP between the lb hosts, api → postgres', () => {
    expect(edge('host_mon1', 'every_host')?.labels).toEqual(['tcp/9100']);
    expect(edge('every_host', 'host_mon1')?.labels).toEqual(['tcp/19532']);
    const vrrp = g.edges.find((e) => e.labels.includes('vrrp'))!;
    expect([vrrp.from, vrrp.to].sort()).toEqual(['host_lb1', 'host_lb2']);
    expect(vrrp.both).toBe(true);
    expect(edge('cluster_api', 'cluster_postgres')?.labels).toEqual(['tcp/5432', 'tcp/6432']);
    expect(edge('internet', 'cluster_edge')?.labels).toEqual(['tcp/80', 'tcp/443']);
    expect(edge('host_mon1', 'cluster_postgres')?.labels).toEqual(['tcp/9187']); // the exporter, not the database
    // The bastion's SSH is open to the docker gateway only: a node of its own.
    expect(edge('net_172_2e28_2e77_2e1_2f32', 'host_bastion')?.labels).toEqual(['tcp/22']);
  });

  it('every edge end is a node or a box', () => {
    const ids = new Set([...g.nodes.map((n) => n.id), ...g.clusters.map((c) => `cluster_${c.id}`)]);
    for (const e of g.edges) expect([ids.has(e.from), ids.has(e.to)], `${e.from} -> ${e.to}`).toEqual([true, true]);
  });

  it('DOT → SVG with Graphviz: every host is drawn; Mermaid names every node', async () => {
    const dot = toDot(g, 'lab');
    const svg = await renderSvg(dot);
    expect(svg).toMatch(/<svg width="\d+pt" height="\d+pt"/);
    for (const h of lab.hosts) expect(svg).toContain(`>${h.name}</text>`);
    expect(svg).toContain('VIP 172.28.77.10');
    const mermaid = toMermaid(g);
    expect(mermaid.startsWith('flowchart LR\n')).toBe(true);
    for (const n of g.nodes) expect(mermaid).toMatch(new RegExp(`^\\s*${n.id}[\\[({]`, 'm'));
    expect(mermaid).toMatch(/^ {2}subgraph cluster_data\["data"\]$/m);
  });

  it('is the same graph, DOT and SVG every time', async () => {
    const again = networkGraph(await loadSite({ cwd: REPO, inventory: 'lab' }));
    expect(again).toEqual(g);
    expect(await renderSvg(toDot(again, 'lab'))).toBe(await renderSvg(toDot(g, 'lab')));
  });
});
