/**
 * The controller's file against one host's copy (`infra audit verify --against-hosts`). Runs
 * are matched by run id; a host's copy is the line the controller signed, so:
 *   - a run on the host but past the end of the controller's file: the file was cut short;
 *   - a run on both whose lines differ: one of them was rewritten (by someone holding the key);
 *   - a run on the host, inside the controller's range, but missing there: removed there;
 *   - a run the controller says touched the host, missing on the host (after the host's first
 *     record): removed on the host, or the append failed at the time (the run warned then);
 *   - a host line whose signature fails: edited on the host.
 * Lines signed by keys not trusted here (other controllers') and unsigned lines from before
 * signing are counted, not judged.
 */
import { parseRecordLine } from './chain.js';
import type { VerifyKey } from './key.js';
import { recipients, type AuditRecord } from './record.js';

export interface HostCopyCheck {
  host: string;
  /** Runs on the host whose line is the controller's, byte for byte. */
  matched: number;
  /** The highest sequence number of the controller's chain that the host holds. */
  head?: number;
  problems: string[];
  /** Not failures: what the check could not judge. */
  notes: string[];
}

/** `controllerLines`: the controller's file; only its lines that verify under `keys` count. */
export function crossCheck(controllerLines: string[], host: string, hostLines: string[], keys: VerifyKey[]): HostCopyCheck {
  const trusted = new Map(keys.map((k) => [k.id, k]));
  const controller = verifiedRecords(controllerLines, trusted);
  const byRun = new Map(controller.map((r) => [r.runId, r]));
  const range = new Map<string, { first: number; last: number }>();
  for (const r of controller) {
    const known = range.get(r.key);
    range.set(r.key, { first: Math.min(known?.first ?? r.seq, r.seq), last: Math.max(known?.last ?? r.seq, r.seq) });
  }
  const out: HostCopyCheck = { host, matched: 0, problems: [], notes: [] };
  const run = (r: AuditRecord) => `run ${r.runId} (seq ${r.seq}, ${r.start})`;
  const onHost = new Set<string>();
  const others = new Map<string, Set<string>>();
  let unsigned = 0;
  let firstOnHost: number | undefined;

  hostLines.forEach((line, i) => {
    if (!line.trim()) return;
    const parsed = parseRecordLine(line, trusted);
    if (!parsed.ok) {
      if (parsed.unknownKey) others.set(parsed.unknownKey, (others.get(parsed.unknownKey) ?? new Set()).add(writerOf(line)));
      else if (parsed.unsigned) unsigned++;
      else out.problems.push(`line ${i + 1} of ${host}'s copy: ${parsed.reason}`);
      return;
    }
    const r = parsed.record;
    onHost.add(r.runId);
    firstOnHost = Math.min(firstOnHost ?? r.seq, r.seq);
    out.head = Math.max(out.head ?? r.seq, r.seq);
    const mine = byRun.get(r.runId);
    const span = range.get(r.key);
    if (mine) {
      if (mine.sig === r.sig) out.matched++;
      else out.problems.push(`${run(r)}: the controller's copy differs from ${host}'s: one of them was rewritten`);
    } else if (!span) {
      out.problems.push(`${run(r)} is on ${host}, but the controller's file holds no record signed by key ${r.key}: the file was replaced`);
    } else if (r.seq > span.last) {
      out.problems.push(`${run(r)} is on ${host}, but the controller's file ends at seq ${span.last}: records were cut from its end`);
    } else if (r.seq >= span.first) {
      out.problems.push(`${run(r)} is on ${host}, but not in the controller's file: it was removed there`);
    }
    // else: older than this (rotated) controller file: nothing to compare it with
  });

  const missing = controller.filter((r) => recipients(r).includes(host) && !onHost.has(r.runId));
  const afterFirst = missing.filter((r) => firstOnHost !== undefined && r.seq > firstOnHost);
  for (const r of afterFirst) out.problems.push(`${run(r)} touched ${host}, but ${host} has no copy: removed on the host, or the append failed at the time`);
  const before = missing.length - afterFirst.length;
  if (before) out.notes.push(`${before} earlier run(s) touched ${host} before its first record here (a rebuilt host, or its log was removed)`);
  if (unsigned) out.notes.push(`${unsigned} unsigned record(s) from before signing: not checked`);
  for (const [key, by] of others) out.notes.push(`records signed by key ${key} (${[...by].join(', ')}): not checked, pass --key to include them`);
  return out;
}

function verifiedRecords(lines: string[], trusted: ReadonlyMap<string, VerifyKey>): AuditRecord[] {
  return lines.flatMap((l) => {
    const p = l.trim() ? parseRecordLine(l, trusted) : undefined;
    return p?.ok ? [p.record] : [];
  });
}

/** "user@controller" of a line, for naming other controllers' records. */
function writerOf(line: string): string {
  try {
    const r = JSON.parse(line) as Partial<AuditRecord>;
    return `${String(r.user)}@${String(r.controller)}`;
  } catch {
    return '?';
  }
}
