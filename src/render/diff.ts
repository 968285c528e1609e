/**
 * Diffs for people: unified diffs for files, "old → new" for packages, services and values.
 * Secrets are masked twice: in the content before diffing (a multi-line secret such as a TLS
 * key is split across "+" lines after diffing, where the redactor could no longer see it
 * whole) and in the final text.
 */
import { structuredPatch } from 'diff';
import type { Change, Diff } from '../modules/types.js';
import { redact } from '../secrets/secret.js';
import { palette } from './ansi.js';

const CONTEXT_LINES = 3;
/** Above this size a file diff is summarized: diffing megabytes helps nobody at a terminal. */
const MAX_DIFF_BYTES = 512 * 1024;

export function renderDiff(d: Diff, opts: { color: boolean }): string {
  const c = palette(opts.color);
  switch (d.kind) {
    case 'file':
      return redact(renderFileDiff(d.path, d.before, d.after, d.sensitive ?? false, opts.color));
    case 'package':
      return redact(`${c.bold(`package ${d.name}`)}: ${arrow(show(d.before), show(d.after), opts.color)}`);
    case 'service':
      return redact(`${c.bold(`service ${d.name}`)}: ${arrow(d.before, d.after, opts.color)}`);
    case 'value': {
      if (d.sensitive) return `${c.bold(d.name)}: (content hidden: sensitive)`;
      const multiline = (d.before ?? '').includes('\n') || (d.after ?? '').includes('\n');
      if (multiline) return redact(renderFileDiff(d.name, d.before, d.after, false, opts.color));
      return redact(`${c.bold(d.name)}: ${arrow(show(d.before), show(d.after), opts.color)}`);
    }
  }
}

/** One line per change: "mode: 0644 → 0600", "install nginx → 1.22.1-9", "content". */
export function renderChanges(changes: Change[]): string[] {
  return changes.map((ch) => {
    if (ch.from !== undefined && ch.to !== undefined) return redact(`${ch.what}: ${ch.from} → ${ch.to}`);
    if (ch.to !== undefined) return redact(`${ch.what} → ${ch.to}`);
    if (ch.from !== undefined) return redact(`${ch.what} (was ${ch.from})`);
    return redact(ch.what);
  });
}

function show(v: string | null): string {
  return v === null ? '(absent)' : v;
}

function arrow(before: string, after: string, color: boolean): string {
  const c = palette(color);
  return `${c.red(before)} → ${c.green(after)}`;
}

function renderFileDiff(path: string, before: string | null, after: string | null, sensitive: boolean, color: boolean): string {
  const c = palette(color);
  const header = [c.bold(`--- ${path} (before)`), c.bold(`+++ ${path} (after)`)];
  // Nothing of a sensitive file's content, old or new: the change line carries its sha256.
  if (sensitive) return [...header, c.yellow(`(content hidden: sensitive${before === null ? '; new file' : after === null ? '; removed' : ''})`)].join('\n');
  if (isBinary(before) || isBinary(after)) return [...header, c.yellow(`(binary content; ${byteCounts(before, after)})`)].join('\n');
  if ((before?.length ?? 0) + (after?.length ?? 0) > MAX_DIFF_BYTES) {
    return [...header, c.yellow(`(too large to show; ${byteCounts(before, after)})`)].join('\n');
  }
  const patch = structuredPatch(path, path, redact(before ?? ''), redact(after ?? ''), '', '', { context: CONTEXT_LINES });
  if (patch.hunks.length === 0) {
    const note = before === after ? '(no content change)' : '(only masked secret values differ)';
    return [...header, c.yellow(note)].join('\n');
  }
  const lines = [...header];
  for (const h of patch.hunks) {
    // Unified diff convention: an empty range starts at the line before it (0 for a new file).
    const oldStart = h.oldLines === 0 ? h.oldStart - 1 : h.oldStart;
    const newStart = h.newLines === 0 ? h.newStart - 1 : h.newStart;
    lines.push(c.cyan(`@@ -${oldStart},${h.oldLines} +${newStart},${h.newLines} @@`));
    for (const l of h.lines) {
      if (l.startsWith('+')) lines.push(c.green(l));
      else if (l.startsWith('-')) lines.push(c.red(l));
      else if (l.startsWith('\\')) lines.push(c.dim(l));
      else lines.push(l);
    }
  }
  return lines.join('\n');
}

function isBinary(text: string | null): boolean {
  return text !== null && text.includes('\0');
}

function byteCounts(before: string | null, after: string | null): string {
  const size = (t: string | null) => (t === null ? 'absent' : `${Buffer.byteLength(t)} bytes`);
  return `${size(before)} → ${size(after)}`;
}
