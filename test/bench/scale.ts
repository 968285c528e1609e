/**
 * The scale run (`npm run bench -- --scale 10,25,50,100`): infra alone, W2's no-op re-apply on
 * a growing share of one fleet, as many containers as the machine holds (each with a small
 * memory limit). Per host count: wall time, controller CPU and peak RSS (median of the runs),
 * a linear fit of RSS per host (extrapolated to 300 and 1,000 hosts), and an SVG chart.
 */
import { writeFile } from 'node:fs/promises';
import { startFleet, type Fleet } from '../integration/fleet.js';
import { prepareHosts } from './hosts.js';
import { runInfraApply, type InfraRun } from './infra.js';
import { median } from './report.js';

export interface ScalePoint {
  hosts: number;
  wallMs: number;
  cpuS: number;
  maxRssKb: number;
  /** Median of the hosts' own time (connect + tasks), from the recap. */
  hostMs: number;
  runs: number;
}

export interface ScaleResult {
  /** Containers asked for, and started (fewer when the machine could not hold them). */
  asked: number;
  started: number;
  memoryMb: number;
  points: ScalePoint[];
  /** RSS = base + perHost × hosts (least squares over the points), kB. */
  rss: { baseKb: number; perHostKb: number; at300Kb: number; at1000Kb: number };
  problems: string[];
}

/** Per container: systemd, sshd, cron and a dpkg run fit in this. */
export const SCALE_MEMORY_MB = 160;

export async function runScale(
  counts: number[],
  runs: number,
  log: (s: string) => void,
  track: (f: Fleet | undefined) => void,
): Promise<ScaleResult> {
  const asked = Math.max(...counts);
  const problems: string[] = [];
  log(`scale: starting bastion + ${asked} targets (${SCALE_MEMORY_MB} MB each)`);
  const t0 = Date.now();
  const fleet = await startFleet({ targets: asked, memoryMb: SCALE_MEMORY_MB, startConcurrency: 12 });
  track(fleet);
  try {
    log(`scale: fleet up in ${((Date.now() - t0) / 1000).toFixed(0)}s; preparing hosts`);
    await prepareHosts(fleet, log);
    const names = fleet.targets.map((t) => t.name);
    const first = await runInfraApply(fleet, 'w2.yaml');
    const failed = first.recap.filter((h) => names.includes(h.host) && (h.failed > 0 || h.unreachable));
    if (failed.length) problems.push(`first apply: ${failed.length} host(s) failed, e.g. ${failed[0]!.host}: ${failed[0]!.error ?? first.failures.get(failed[0]!.host)}`);
    log(`scale: first apply on ${names.length} hosts in ${(first.m.wallMs / 1000).toFixed(1)}s`);
    const points: ScalePoint[] = [];
    for (const n of [...counts].sort((a, b) => a - b)) {
      const limit = names.slice(0, n).join(',');
      const samples: InfraRun[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await runInfraApply(fleet, 'w2.yaml', ['-l', limit]);
        const bad = r.recap.filter((h) => h.failed > 0 || h.unreachable || h.changed > 0);
        if (r.m.code !== 0 || bad.length) problems.push(`${n} hosts, run ${i + 1}: exit ${r.m.code}, ${bad.length} host(s) not a clean no-op`);
        samples.push(r);
      }
      const p: ScalePoint = {
        hosts: n,
        wallMs: median(samples.map((s) => s.m.wallMs)),
        cpuS: median(samples.map((s) => s.m.cpuS)),
        maxRssKb: median(samples.map((s) => s.m.maxRssKb)),
        hostMs: median(samples.map((s) => median(s.recap.map((h) => h.durationMs)))),
        runs,
      };
      log(`scale: ${n} hosts: no-op ${(p.wallMs / 1000).toFixed(2)}s wall, ${p.cpuS.toFixed(2)}s cpu, ${(p.maxRssKb / 1024).toFixed(0)} MB peak RSS`);
      points.push(p);
    }
    return { asked, started: names.length, memoryMb: SCALE_MEMORY_MB, points, rss: fitRss(points), problems };
  } finally {
    log('scale: removing the fleet');
    await fleet.down();
    track(undefined);
  }
}

/** Least squares RSS = base + perHost × hosts. */
export function fitRss(points: ScalePoint[]): ScaleResult['rss'] {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.hosts, 0) / n;
  const my = points.reduce((a, p) => a + p.maxRssKb, 0) / n;
  const sxx = points.reduce((a, p) => a + (p.hosts - mx) ** 2, 0);
  const perHostKb = sxx === 0 ? 0 : points.reduce((a, p) => a + (p.hosts - mx) * (p.maxRssKb - my), 0) / sxx;
  const baseKb = my - perHostKb * mx;
  return { baseKb, perHostKb, at300Kb: baseKb + perHostKb * 300, at1000Kb: baseKb + perHostKb * 1000 };
}

export function renderScale(r: ScaleResult): string {
  const lines = [
    `scale: W2 no-op re-apply, infra only, ${r.started} of ${r.asked} containers started (${r.memoryMb} MB limit each), median of ${r.points[0]?.runs ?? 0} run(s)`,
    '',
    '| hosts | wall | per host (own time) | controller cpu | peak RSS |',
    '|---|---|---|---|---|',
    ...r.points.map((p) => `| ${p.hosts} | ${(p.wallMs / 1000).toFixed(2)} s | ${(p.hostMs / 1000).toFixed(2)} s | ${p.cpuS.toFixed(2)} s | ${(p.maxRssKb / 1024).toFixed(0)} MB |`),
    '',
    `peak RSS ≈ ${(r.rss.baseKb / 1024).toFixed(0)} MB + ${(r.rss.perHostKb / 1024).toFixed(2)} MB per host → ${(r.rss.at300Kb / 1024).toFixed(0)} MB at 300 hosts, ${(r.rss.at1000Kb / 1024).toFixed(0)} MB at 1,000`,
  ];
  if (r.problems.length) lines.push('', 'problems:', ...r.problems.map((p) => `  ${p}`));
  return lines.join('\n');
}

/** Two panels, hosts on x: no-op wall time (s) and peak controller RSS (MB). Plain SVG, no dependency. */
export function scaleSvg(r: ScaleResult): string {
  const W = 360;
  const H = 240;
  const pad = { l: 52, r: 16, t: 30, b: 40 };
  const xmax = Math.max(...r.points.map((p) => p.hosts));
  const panel = (ox: number, title: string, unit: string, ys: number[], color: string): string => {
    const ymax = niceMax(Math.max(...ys));
    const x = (v: number) => ox + pad.l + (v / xmax) * (W - pad.l - pad.r);
    const y = (v: number) => pad.t + (1 - v / ymax) * (H - pad.t - pad.b);
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * ymax);
    const pts = r.points.map((p, i) => `${x(p.hosts).toFixed(1)},${y(ys[i]!).toFixed(1)}`);
    return [
      `<text x="${ox + W / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
      ...ticks.map((t) => `<line x1="${ox + pad.l}" x2="${ox + W - pad.r}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/><text x="${ox + pad.l - 6}" y="${y(t) + 4}" text-anchor="end">${fmt(t)}</text>`),
      `<line x1="${ox + pad.l}" x2="${ox + W - pad.r}" y1="${y(0)}" y2="${y(0)}" stroke="#333"/>`,
      ...r.points.map((p) => `<text x="${x(p.hosts)}" y="${H - pad.b + 16}" text-anchor="middle">${p.hosts}</text>`),
      `<text x="${ox + pad.l + (W - pad.l - pad.r) / 2}" y="${H - 6}" text-anchor="middle">hosts</text>`,
      `<text x="${ox + 12}" y="${pad.t + (H - pad.t - pad.b) / 2}" text-anchor="middle" transform="rotate(-90 ${ox + 12} ${pad.t + (H - pad.t - pad.b) / 2})">${esc(unit)}</text>`,
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`,
      ...pts.map((p) => `<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${color}"/>`),
    ].join('\n');
  };
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel(0, 'W2 no-op re-apply, wall time', 'seconds', r.points.map((p) => p.wallMs / 1000), '#1f77b4'),
    panel(W, 'peak controller memory (RSS)', 'MB', r.points.map((p) => p.maxRssKb / 1024), '#d62728'),
    '</svg>',
    '',
  ].join('\n');
}

function niceMax(v: number): number {
  const e = 10 ** Math.floor(Math.log10(v || 1));
  return [1, 2, 2.5, 5, 10].map((m) => m * e).find((c) => c >= v) ?? 10 * e;
}

const fmt = (v: number): string => (v >= 10 ? v.toFixed(0) : v.toFixed(1));
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export async function writeScaleSvg(file: string, r: ScaleResult): Promise<void> {
  await writeFile(file, scaleSvg(r));
}
