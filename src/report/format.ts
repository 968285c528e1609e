/** Text pieces shared by the plain and TTY reporters: task result lines, exec output, durations. */
import type { RunEvent } from './events.js';
import { renderChanges, renderDiff } from '../render/diff.js';
import { palette } from '../render/ansi.js';

export type TaskResultEvent = Extract<RunEvent, { type: 'task.result' }>;
export type ExecOutputEvent = Extract<RunEvent, { type: 'exec.output' }>;

export interface FormatOptions {
  diff: boolean;
  color: boolean;
  verbose: boolean;
}

const STATUS_WIDTH = 8;

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return `${m}m ${String(s).padStart(2, '0')}s`;
}

export function statusLabel(status: string, color: boolean): string {
  const c = palette(color);
  const padded = status.padEnd(STATUS_WIDTH);
  if (status === 'changed') return c.yellow(padded);
  if (status === 'failed' || status === 'FAILED' || status === 'UNREACHABLE') return c.red(padded);
  if (status === 'ok') return c.green(padded);
  return c.dim(padded);
}

/** "changed  files.template /etc/x" plus indented changes, diffs and errors. */
export function taskResultLines(e: TaskResultEvent, opts: FormatOptions): { head: string; body: string[] } {
  const label = `${e.handler ? 'handler ' : ''}${e.task}`;
  let head = `${statusLabel(e.status, opts.color)} ${label}`;
  if (opts.verbose) head += ` (${formatMsShort(e.ms)})`;
  const body: string[] = [];
  if (e.status === 'failed') {
    body.push(...indent((e.error ?? 'failed').split('\n'), 4));
  } else if (e.status === 'changed') {
    body.push(...indent(renderChanges(e.changes), 4));
    if (opts.diff) for (const d of e.diff ?? []) body.push(...indent(renderDiff(d, { color: opts.color }).split('\n'), 4));
  } else if (opts.verbose && e.reason) {
    head += ` — ${e.reason}`;
  }
  if (e.warning) body.push(...indent([palette(opts.color).yellow(`warning: ${e.warning}`)], 4));
  return { head, body };
}

/**
 * The result as the text reporters show it: a warning the run already showed is dropped, so
 * the same text from every host (an end-of-life runtime) is printed once per run, while
 * warnings that name their host stay one per host.
 */
export function onceWarning(e: TaskResultEvent, shown: Set<string>): TaskResultEvent {
  if (!e.warning) return e;
  if (shown.has(e.warning)) return { ...e, warning: undefined };
  shown.add(e.warning);
  return e;
}

/** Output of an ad-hoc command, kept together for its host. */
export function execOutputLines(e: ExecOutputEvent, color: boolean): string[] {
  const c = palette(color);
  const lines = [e.code === 0 ? c.green(`exit ${e.code}`) : c.red(`exit ${e.code}`)];
  for (const l of splitOutput(e.stdout)) lines.push(`│ ${l}`);
  for (const l of splitOutput(e.stderr)) lines.push(c.red(`! ${l}`));
  return lines;
}

function splitOutput(text: string): string[] {
  if (!text) return [];
  return text.replace(/\n$/, '').split('\n');
}

export function indent(lines: string[], n: number): string[] {
  const pad = ' '.repeat(n);
  return lines.map((l) => (l === '' ? l : pad + l));
}

function formatMsShort(ms: number): string {
  return formatMs(ms).replace(' ', '');
}
