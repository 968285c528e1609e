/**
 * Samples → cells (median per workload × hosts × tool) → the terminal table, the ratios,
 * where infra's time goes, and the targets of issue 20 (PASS/FAIL).
 */
export type Tool = 'infra' | 'ansible';
export type Phase = 'W1 command' | 'W2 first' | 'W2 no-op' | 'W3 first' | 'W3 no-op';

export interface InfraDetail {
  /** Per host: [min, max] over hosts. Channels as counted by the transport. */
  channels: [number, number];
  /**
   * Session channels: channels minus the one forwarded (direct-tcpip) channel through the
   * bastion, which the transport counts on the target too. Every fleet target is behind it.
   */
  sessions: [number, number];
  commands: [number, number];
  connections: [number, number];
  /** Median over hosts. */
  connectMs: number;
  hostMs: number;
  taskMs: number;
  /** Module → ms per host (summed over its tasks on a host, mean over hosts; first run of the cell). */
  modules?: Record<string, number>;
}

export interface Sample {
  phase: Phase;
  hosts: number;
  tool: Tool;
  run: number;
  wallMs: number;
  cpuS: number;
  maxRssKb: number;
  treePssKb: number;
  detachedCpuS: number;
  changed: number;
  /** Empty when the run succeeded everywhere and (first applies) the end state checked out. */
  problems: string[];
  infra?: InfraDetail;
  /** Processes started on one target during the run (hosts.ts countHostProcesses), both tools. */
  hostProcs?: number;
}

export interface Cell {
  phase: Phase;
  hosts: number;
  tool: Tool;
  runs: number;
  wallMs: number;
  cpuS: number;
  maxRssKb: number;
  treePssKb: number;
  failedRuns: number;
  infra?: InfraDetail;
  hostProcs?: number;
}

export const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export function cells(samples: Sample[]): Cell[] {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const k = `${s.phase}|${s.hosts}|${s.tool}`;
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  return [...groups.values()].map((ss) => {
    const first = ss[0]!;
    const withInfra = ss.filter((s) => s.infra).map((s) => s.infra!);
    return {
      phase: first.phase,
      hosts: first.hosts,
      tool: first.tool,
      runs: ss.length,
      wallMs: median(ss.map((s) => s.wallMs)),
      cpuS: median(ss.map((s) => s.cpuS)),
      maxRssKb: Math.max(...ss.map((s) => s.maxRssKb)),
      treePssKb: Math.max(...ss.map((s) => s.treePssKb)),
      failedRuns: ss.filter((s) => s.problems.length > 0).length,
      hostProcs: ss.some((s) => s.hostProcs !== undefined) ? median(ss.flatMap((s) => (s.hostProcs === undefined ? [] : [s.hostProcs]))) : undefined,
      infra: withInfra.length
        ? {
            channels: [Math.min(...withInfra.map((d) => d.channels[0])), Math.max(...withInfra.map((d) => d.channels[1]))],
            sessions: [Math.min(...withInfra.map((d) => d.sessions[0])), Math.max(...withInfra.map((d) => d.sessions[1]))],
            commands: [Math.min(...withInfra.map((d) => d.commands[0])), Math.max(...withInfra.map((d) => d.commands[1]))],
            connections: [Math.min(...withInfra.map((d) => d.connections[0])), Math.max(...withInfra.map((d) => d.connections[1]))],
            connectMs: median(withInfra.map((d) => d.connectMs)),
            hostMs: median(withInfra.map((d) => d.hostMs)),
            taskMs: median(withInfra.map((d) => d.taskMs)),
            modules: withInfra[0]!.modules,
          }
        : undefined,
    };
  });
}

export interface Row {
  phase: Phase;
  hosts: number;
  infra?: Cell;
  ansible?: Cell;
  wallRatio: number;
  cpuRatio: number;
}

const PHASES: Phase[] = ['W1 command', 'W2 first', 'W2 no-op', 'W3 first', 'W3 no-op'];

export function rows(cs: Cell[]): Row[] {
  const out: Row[] = [];
  const hostCounts = [...new Set(cs.map((c) => c.hosts))].sort((a, b) => a - b);
  for (const phase of PHASES) {
    for (const hosts of hostCounts) {
      const infra = cs.find((c) => c.phase === phase && c.hosts === hosts && c.tool === 'infra');
      const ansible = cs.find((c) => c.phase === phase && c.hosts === hosts && c.tool === 'ansible');
      if (!infra && !ansible) continue;
      out.push({
        phase,
        hosts,
        infra,
        ansible,
        wallRatio: infra && ansible ? ansible.wallMs / infra.wallMs : NaN,
        cpuRatio: infra && ansible ? ansible.cpuS / infra.cpuS : NaN,
      });
    }
  }
  return out;
}

export interface Target {
  name: string;
  pass: boolean | null;
  detail: string;
}

/** Issue 20's targets; a cell not measured is N/A, never a pass. */
export function targets(rs: Row[], samples: Sample[]): Target[] {
  const maxHosts = Math.max(...rs.map((r) => r.hosts));
  const ratio = (name: string, phase: Phase, hosts: number[], min: number): Target => {
    const got = hosts.map((h) => rs.find((r) => r.phase === phase && r.hosts === h && Number.isFinite(r.wallRatio)));
    const measured = got.filter((r): r is Row => r !== undefined);
    return {
      name,
      pass: measured.length === hosts.length ? measured.every((r) => r.wallRatio >= min) : null,
      detail: measured.length ? measured.map((r) => `${r.hosts}h ${fmtRatio(r.wallRatio)}`).join(', ') : 'not measured',
    };
  };
  const out: Target[] = [
    ratio('W2 no-op re-apply at 10 hosts >= 25x faster than Ansible', 'W2 no-op', [10], 25),
    ratio('W2 no-op re-apply at 30 hosts >= 50x faster than Ansible', 'W2 no-op', [30], 50),
    ratio('W2 first apply >= 5x faster than Ansible at 10 and 30 hosts', 'W2 first', [10, 30], 5),
    ratio('W1 one command on 30 hosts >= 10x faster than Ansible', 'W1 command', [30], 10),
  ];
  const infraAtMax = samples.filter((s) => s.tool === 'infra' && s.hosts === (rs.some((r) => r.hosts === 30) ? 30 : maxHosts));
  const peak = Math.max(...infraAtMax.map((s) => s.maxRssKb));
  out.push({
    name: "infra's controller peak memory <= 200 MB at 30 hosts",
    pass: infraAtMax.length ? peak <= 200 * 1024 : null,
    detail: infraAtMax.length ? `${mb(peak)} (max over every infra run at ${infraAtMax[0]!.hosts} hosts)${infraAtMax[0]!.hosts !== 30 ? ' (no 30-host run)' : ''}` : 'not measured',
  });
  const noops = samples.filter((s) => s.tool === 'infra' && s.phase.endsWith('no-op') && s.infra);
  const bad = noops.filter((s) => s.infra!.sessions[0] !== 1 || s.infra!.sessions[1] !== 1 || s.infra!.connections[0] !== 1 || s.infra!.connections[1] !== 1);
  out.push({
    name: 'a no-op run opens one session per host (1 connection, 1 session channel, whatever the task count)',
    pass: noops.length ? bad.length === 0 : null,
    detail: noops.length
      ? `${noops.length - bad.length}/${noops.length} no-op runs (${[...new Set(noops.map((s) => s.phase))].join(', ')}; W2 = 10 tasks, W3 = 101) with exactly 1 connection and 1 session channel per host` +
        ` (+1 forwarded channel through the bastion)` +
        (bad.length ? `; e.g. ${bad[0]!.phase} ${bad[0]!.hosts}h: sessions ${bad[0]!.infra!.sessions.join('..')}, connections ${bad[0]!.infra!.connections.join('..')}` : '')
      : 'not measured',
  });
  return out;
}

// ---------------------------------------------------------------- formatting

export const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;
const sec = (ms: number | undefined): string => (ms === undefined || !Number.isFinite(ms) ? '-' : `${(ms / 1000).toFixed(2)}s`);
const cpu = (s: number | undefined): string => (s === undefined || !Number.isFinite(s) ? '-' : `${s.toFixed(2)}s`);
export const fmtRatio = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(1)}x` : '-');
const range = (r: [number, number] | undefined): string => (!r ? '-' : r[0] === r[1] ? String(r[0]) : `${r[0]}-${r[1]}`);

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function renderTable(rs: Row[]): string {
  const header = [
    'workload', 'hosts',
    'wall infra', 'wall ansible', 'x',
    'cpu infra', 'cpu ansible', 'x',
    'rss infra', 'rss ansible', 'pss tree ans.',
    'procs/host infra', 'procs/host ans.',
    'cmds/host', 'sessions/host', 'fail',
  ];
  const body = rs.map((r) => [
    r.phase,
    String(r.hosts),
    sec(r.infra?.wallMs),
    sec(r.ansible?.wallMs),
    fmtRatio(r.wallRatio),
    cpu(r.infra?.cpuS),
    cpu(r.ansible?.cpuS),
    fmtRatio(r.cpuRatio),
    r.infra ? mb(r.infra.maxRssKb) : '-',
    r.ansible ? mb(r.ansible.maxRssKb) : '-',
    r.ansible ? mb(r.ansible.treePssKb) : '-',
    r.infra?.hostProcs === undefined ? '-' : String(Math.round(r.infra.hostProcs)),
    r.ansible?.hostProcs === undefined ? '-' : String(Math.round(r.ansible.hostProcs)),
    range(r.infra?.infra?.commands),
    range(r.infra?.infra?.sessions),
    `${r.infra?.failedRuns ?? '-'}/${r.ansible?.failedRuns ?? '-'}`,
  ]);
  return table(header, body);
}

export function renderTimeSplit(rs: Row[]): string {
  const body = rs
    .filter((r) => r.infra?.infra)
    .map((r) => {
      const c = r.infra!;
      const d = c.infra!;
      return [
        r.phase,
        String(r.hosts),
        sec(c.wallMs),
        sec(c.wallMs - d.hostMs),
        sec(d.connectMs),
        sec(d.taskMs),
        sec(d.hostMs),
        d.commands[1] > 0 ? `${(d.taskMs / ((d.commands[0] + d.commands[1]) / 2)).toFixed(1)}` : '-',
        Object.entries(d.modules ?? {})
          .sort((a, b) => b[1] - a[1])
          .slice(0, 3)
          .map(([m, ms]) => `${m} ${ms.toFixed(0)}ms`)
          .join(', '),
      ];
    });
  return table(['workload', 'hosts', 'wall', 'outside hosts*', 'connect/host', 'tasks/host', 'host total', 'task ms/cmd', 'slowest modules per host'], body);
}

export function renderTargets(ts: Target[]): string {
  return ts.map((t) => `${t.pass === null ? 'N/A ' : t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.detail}`).join('\n');
}
