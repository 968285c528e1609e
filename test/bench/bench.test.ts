import { describe, expect, it } from 'vitest';
import { parseAdhoc, parsePlayRecap } from './ansible.js';
import { blobContent, templateContent, w3Digest } from './expected.js';
import { parseEvents } from './infra.js';
import { parseOptions } from './options.js';
import { fitRss, scaleSvg, type ScalePoint } from './scale.js';
import { cells, median, rows, targets, type Sample } from './report.js';

describe('ansible output parsers', () => {
  it('reads the PLAY RECAP per host', () => {
    const out = `PLAY [targets] ***\n...\nPLAY RECAP *********\ntarget1                    : ok=11   changed=10   unreachable=0    failed=0    skipped=0    rescued=0    ignored=0\ntarget2                    : ok=2    changed=0    unreachable=1    failed=1    skipped=0    rescued=0    ignored=0\n`;
    const r = parsePlayRecap(out);
    expect(r.get('target1')).toEqual({ ok: 11, changed: 10, failed: 0, unreachable: 0 });
    expect(r.get('target2')).toEqual({ ok: 2, changed: 0, failed: 1, unreachable: 1 });
  });
  it('reads ad-hoc result lines', () => {
    const r = parseAdhoc('target1 | CHANGED | rc=0 >>\n 10:00 up 1 min\ntarget2 | FAILED | rc=1 >>\ntarget3 | UNREACHABLE! => {\n');
    expect(r.get('target1')?.ok).toBe(1);
    expect(r.get('target2')?.failed).toBe(1);
    expect(r.get('target3')?.unreachable).toBe(1);
  });
});

describe('infra events', () => {
  it('takes the recap from run.end and sums task times per host', () => {
    const lines = [
      '{"type":"host.connected","host":"t1","ms":40}',
      '{"type":"task.result","host":"t1","task":"a","module":"m","status":"ok","changes":[],"ms":2}',
      '{"type":"task.result","host":"t1","task":"b","module":"m","status":"ok","changes":[],"ms":3}',
      'not json',
      '{"type":"exec.output","host":"t1","code":0,"stdout":"","stderr":""}',
      '{"type":"run.end","runId":"x","recap":[{"host":"t1","ok":2,"changed":0,"failed":0,"skipped":0,"unreachable":false,"durationMs":50}],"durationMs":60,"interrupted":false,"exitCode":0}',
    ];
    const e = parseEvents(lines.join('\n'));
    expect(e.recap[0]?.host).toBe('t1');
    expect(e.taskMs.get('t1')).toBe(5);
    expect(e.execCodes.get('t1')).toBe(0);
    expect(e.connectedMs.get('t1')).toBe(40);
  });
});

describe('expected end state', () => {
  it('is deterministic and the blob is 100 KB', () => {
    expect(blobContent().length).toBeGreaterThanOrEqual(100 * 1024);
    expect(blobContent().length).toBeLessThan(101 * 1024);
    expect(blobContent().equals(blobContent())).toBe(true);
    expect(w3Digest()).toMatch(/^[0-9a-f]{64}$/);
    expect(templateContent('t1')).toBe('# managed by the benchmark\nhost = t1\nport = 8080\n');
  });
});

describe('options', () => {
  it('has the issue defaults and a quick mode', () => {
    expect(parseOptions([], {})).toMatchObject({ hosts: [1, 10, 30], runs: 3, workloads: ['w1', 'w2', 'w3'], tools: ['infra', 'ansible'] });
    expect(parseOptions(['--quick'], {})).toMatchObject({ hosts: [1, 3], runs: 1 });
    expect(parseOptions(['--hosts', '5', '--runs=2', '--workloads', 'w2'], {})).toMatchObject({ hosts: [5], runs: 2, workloads: ['w2'] });
    expect(() => parseOptions(['--hosts', '0'], {})).toThrow(/positive integer/);
    expect(() => parseOptions(['--workloads', 'w9'], {})).toThrow(/unknown workload/);
    expect(parseOptions(['--scale', '10,50', '--svg', 'x.svg'], {})).toMatchObject({ scale: [10, 50], svg: 'x.svg' });
    expect(parseOptions([], {}).scale).toEqual([]);
  });
});

describe('scale run', () => {
  const point = (hosts: number, rssMb: number, wallS: number): ScalePoint => ({ hosts, wallMs: wallS * 1000, cpuS: 1, maxRssKb: rssMb * 1024, hostMs: 500, runs: 3 });
  const points = [point(10, 100, 1.5), point(50, 140, 3), point(100, 190, 5.5)];
  it('fits RSS per host and extrapolates', () => {
    const f = fitRss(points);
    expect(f.perHostKb / 1024).toBeCloseTo(1.0, 1);
    expect(f.at300Kb / 1024).toBeCloseTo(f.baseKb / 1024 + 300 * (f.perHostKb / 1024), 5);
    expect(f.at1000Kb).toBeGreaterThan(f.at300Kb);
  });
  it('draws both panels with a point per host count', () => {
    const svg = scaleSvg({ asked: 100, started: 100, memoryMb: 160, points, rss: fitRss(points), problems: [] });
    expect(svg).toMatch(/^<svg /);
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg.match(/<circle/g)).toHaveLength(6);
    expect(svg).toContain('peak controller memory');
  });
});

describe('report', () => {
  const s = (tool: 'infra' | 'ansible', phase: Sample['phase'], wallMs: number, extra: Partial<Sample> = {}): Sample => ({
    phase, hosts: 30, tool, run: 1, wallMs, cpuS: wallMs / 1000, maxRssKb: 100_000, treePssKb: 100_000, detachedCpuS: 0, changed: 0, problems: [], ...extra,
  });
  it('takes medians', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });
  it('computes ratios and passes or fails the targets', () => {
    const infraNoop = { channels: [2, 2] as [number, number], sessions: [1, 1] as [number, number], commands: [5, 7] as [number, number], connections: [1, 1] as [number, number], connectMs: 50, hostMs: 100, taskMs: 20 };
    const samples = [
      s('infra', 'W2 no-op', 500, { infra: infraNoop }),
      s('ansible', 'W2 no-op', 12_000),
      s('infra', 'W2 first', 5000, { maxRssKb: 250 * 1024 }),
      s('ansible', 'W2 first', 12_000),
      s('infra', 'W2 first', 2000, { hosts: 10 }),
      s('ansible', 'W2 first', 12_000, { hosts: 10 }),
    ];
    const rs = rows(cells(samples));
    expect(rs.find((r) => r.phase === 'W2 no-op')?.wallRatio).toBe(24);
    const t = targets(rs, samples);
    // no-op at 10 and W1 not measured: N/A, never a pass; 24x < 50x; 6x at 10 but 2.4x at 30 < 5x; 250 MB > 200 MB.
    expect(t.map((x) => x.pass)).toEqual([null, false, false, null, false, true]);
  });
  it('fails the one-session target when a no-op opened more channels', () => {
    const samples = [s('infra', 'W2 no-op', 500, { infra: { channels: [2, 4], sessions: [1, 3], commands: [5, 7], connections: [1, 1], connectMs: 1, hostMs: 1, taskMs: 1 } })];
    expect(targets(rows(cells(samples)), samples)[5]?.pass).toBe(false);
  });
});
