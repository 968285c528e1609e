/** The recap table printed at run.end by the TTY and plain reporters. */
import type { HostRecap } from './events.js';
import { palette, stripAnsi } from '../render/ansi.js';
import { redact } from '../secrets/secret.js';
import { formatMs } from './format.js';

const COLUMNS = ['host', 'ok', 'changed', 'failed', 'unreachable', 'skipped', 'time'] as const;

export function renderRecap(recap: HostRecap[], durationMs: number, color: boolean): string {
  const c = palette(color);
  const rows = recap.map((r) => ({
    cells: [r.host, String(r.ok), String(r.changed), String(r.failed), r.unreachable ? '1' : '0', String(r.skipped), formatMs(r.durationMs)],
    style: r.unreachable || r.failed > 0 ? c.red : r.changed > 0 ? c.yellow : c.green,
    recap: r,
  }));
  const totals = [
    `total (${recap.length} ${recap.length === 1 ? 'host' : 'hosts'})`,
    String(sum(recap, (r) => r.ok)),
    String(sum(recap, (r) => r.changed)),
    String(sum(recap, (r) => r.failed)),
    String(sum(recap, (r) => (r.unreachable ? 1 : 0))),
    String(sum(recap, (r) => r.skipped)),
    formatMs(durationMs),
  ];
  const all = [[...COLUMNS] as string[], ...rows.map((r) => r.cells), totals];
  const widths = COLUMNS.map((_, i) => Math.max(...all.map((cells) => cells[i].length)));
  // First column left-aligned, numbers right-aligned.
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  const out = [c.bold(line(all[0]))];
  for (const r of rows) {
    const text = line(r.cells);
    out.push(r.style(text.slice(0, widths[0])) + text.slice(widths[0]));
  }
  out.push(c.dim('─'.repeat(stripAnsi(line(totals)).length)));
  out.push(c.bold(line(totals)));
  const troubled = recap.filter((r) => r.error || r.unreachable || r.failed > 0);
  if (troubled.length) {
    out.push('');
    for (const r of troubled) {
      const state = r.unreachable ? 'unreachable' : r.failed > 0 ? 'failed' : 'error';
      out.push(c.red(`${r.host}: ${state}${r.error ? `: ${r.error}` : ''}`));
    }
  }
  return redact(out.join('\n'));
}

function sum(recap: HostRecap[], f: (r: HostRecap) => number): number {
  return recap.reduce((n, r) => n + f(r), 0);
}
