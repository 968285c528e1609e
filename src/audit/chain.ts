/**
 * The hash chain of an audit file: one JSON object per line, each carrying `prev` (the hash
 * of the line before, null on the first) and `hash` (sha256 of the canonical JSON of the
 * record without `hash`). The line is written as the canonical JSON with `hash` appended
 * last, so a shell with sha256sum can extend the chain on a host (remote.ts).
 *
 * Detected: an edited line, a deleted, inserted or reordered line, and a first line that
 * continues another chain. Not detectable by a chain alone: lines cut off at the end (the
 * copies on hosts and the controller are the cross-check).
 */
import { canonicalJson, sha256Hex } from './canonical.js';
import type { AuditDraft, AuditRecord } from './record.js';

const HASH = /^[0-9a-f]{64}$/;

/** The line that appends `draft` after a line whose hash is `prev`. */
export function sealRecord(draft: AuditDraft, prev: string | null): { line: string; record: AuditRecord } {
  const body = canonicalJson({ ...draft, prev });
  const hash = sha256Hex(body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, record: { ...draft, prev, hash } };
}

/** The hash a new line must carry as prev, from the current last line (null: start a chain). */
export function hashOfLine(line: string | undefined): string | null {
  if (!line?.trim()) return null;
  try {
    const h = (JSON.parse(line) as { hash?: unknown }).hash;
    return typeof h === 'string' && HASH.test(h) ? h : null;
  } catch {
    return null;
  }
}

export interface ChainCheck {
  ok: boolean;
  /** Records checked (up to the break). */
  count: number;
  /** 1-based line number of the first broken line. */
  brokenAt?: number;
  reason?: string;
}

/**
 * Checks a chain. `continued`: the first line may point at a line of an earlier (rotated)
 * file; otherwise it must start the chain (prev null).
 */
export function verifyChain(lines: string[], opts: { continued?: boolean } = {}): ChainCheck {
  const rows = lines.length && lines[lines.length - 1] === '' ? lines.slice(0, -1) : lines;
  let prev: string | null = null;
  for (let i = 0; i < rows.length; i++) {
    const broken = (reason: string): ChainCheck => ({ ok: false, count: i, brokenAt: i + 1, reason });
    let rec: Partial<AuditRecord>;
    try {
      rec = JSON.parse(rows[i]) as Partial<AuditRecord>;
    } catch {
      return broken(rows[i].trim() ? 'not valid JSON' : 'empty line');
    }
    if (!rec || typeof rec !== 'object' || typeof rec.hash !== 'string' || !HASH.test(rec.hash)) return broken('no hash field');
    const { hash, ...rest } = rec;
    if (sha256Hex(canonicalJson(rest)) !== hash) return broken('its hash does not match its content: the line was edited');
    const first = i === 0;
    if (first && !opts.continued && rec.prev !== null) {
      return broken('the first line continues an earlier chain: lines before it were removed (or the file was rotated: use --continued)');
    }
    if (!first && rec.prev !== prev) {
      return broken(`its prev does not match line ${i}'s hash: a line was deleted, inserted or reordered`);
    }
    prev = hash;
  }
  return { ok: true, count: rows.length };
}
