/**
 * The signed chain of an audit file: one JSON object per line, each carrying `seq` (1, 2, ...),
 * `prev` (the signature of the line before, null on the first), `key` (the signing key's id)
 * and `sig`: the ed25519 signature (key.ts) of the canonical JSON of the record without `sig`.
 * The line is that canonical JSON with `sig` appended last.
 *
 * Detected by the chain alone: an edited line, a deleted, inserted or reordered line, a first
 * line that continues another chain, and a file rewritten and re-chained by anyone without the
 * key. Not detectable by a chain alone: lines cut off at the end — every record also goes to
 * the hosts it touched, and `infra audit verify --against-hosts` compares (cross-check.ts).
 */
import { canonicalJson } from './canonical.js';
import { signText, verifyText, type SigningKey, type VerifyKey } from './key.js';
import type { AuditDraft, AuditRecord } from './record.js';

/** The last record of a chain: what the next one links to. */
export interface ChainHead {
  seq: number;
  sig: string;
}

/** The line that appends `draft` after `head` (null: start a chain). */
export function sealRecord(draft: AuditDraft, head: ChainHead | null, key: SigningKey): { line: string; record: AuditRecord } {
  const body = canonicalJson({ ...draft, seq: (head?.seq ?? 0) + 1, prev: head?.sig ?? null, key: key.id });
  const sig = signText(key, body);
  const record = { ...(JSON.parse(body) as Omit<AuditRecord, 'sig'>), sig };
  return { line: `${body.slice(0, -1)},"sig":${JSON.stringify(sig)}}`, record };
}

/** The head a new line links to, from the current last line; undefined when it is not a signed record. */
export function headOfLine(line: string): ChainHead | undefined {
  try {
    const r = JSON.parse(line) as Partial<AuditRecord>;
    return r.v === 2 && Number.isInteger(r.seq) && typeof r.sig === 'string' ? { seq: r.seq!, sig: r.sig } : undefined;
  } catch {
    return undefined;
  }
}

export type ParsedLine = { ok: true; record: AuditRecord } | { ok: false; reason: string; unknownKey?: string; unsigned?: true };

/** One line, checked against the trusted keys: its signature must match its content. */
export function parseRecordLine(line: string, keys: ReadonlyMap<string, VerifyKey>): ParsedLine {
  let rec: Omit<Partial<AuditRecord>, 'v'> & { v?: unknown };
  try {
    rec = JSON.parse(line) as typeof rec;
  } catch {
    return { ok: false, reason: line.trim() ? 'not valid JSON' : 'empty line' };
  }
  if (!rec || typeof rec !== 'object') return { ok: false, reason: 'not a record' };
  if (rec.v === 1) return { ok: false, reason: 'not a signed record (format v1: written before records were signed)', unsigned: true };
  if (rec.v !== 2) return { ok: false, reason: `not an audit record (format v${String(rec.v)})` };
  if (typeof rec.sig !== 'string' || typeof rec.key !== 'string' || !Number.isInteger(rec.seq)) return { ok: false, reason: 'no signature' };
  const key = keys.get(rec.key);
  if (!key) return { ok: false, reason: `signed by key ${rec.key}, which is not among the trusted keys (pass --key)`, unknownKey: rec.key };
  const { sig, ...rest } = rec;
  if (!verifyText(key, canonicalJson(rest), sig)) return { ok: false, reason: 'its signature does not match its content: the line was edited' };
  return { ok: true, record: rec as AuditRecord };
}

export interface ChainCheck {
  ok: boolean;
  /** Signed records checked (up to the break). */
  count: number;
  /** Unsigned records from before signing began, at the start of the file: not verifiable. */
  unsigned?: number;
  /** The last intact record. */
  head?: ChainHead;
  /** 1-based line number of the first broken line. */
  brokenAt?: number;
  reason?: string;
}

/**
 * Checks a chain against the trusted keys. `continued`: the first line may link to a line of
 * an earlier (rotated) file; otherwise it must start the chain (seq 1, prev null). Unsigned
 * records (format v1, from before signing) are accepted only before the first signed one,
 * and counted apart.
 */
export function verifyChain(lines: string[], opts: { keys: VerifyKey[]; continued?: boolean }): ChainCheck {
  const keys = new Map(opts.keys.map((k) => [k.id, k]));
  const rows = lines.length && lines[lines.length - 1] === '' ? lines.slice(0, -1) : lines;
  let head: ChainHead | undefined;
  let unsigned = 0;
  while (unsigned < rows.length && isUnsigned(rows[unsigned], keys)) unsigned++;
  const counts = unsigned ? { unsigned } : {};
  for (let i = unsigned; i < rows.length; i++) {
    const broken = (reason: string): ChainCheck => ({ ok: false, count: i - unsigned, ...counts, head, brokenAt: i + 1, reason });
    const parsed = parseRecordLine(rows[i], keys);
    if (!parsed.ok) return broken(parsed.reason);
    const rec = parsed.record;
    if (!head && !opts.continued && (rec.seq !== 1 || rec.prev !== null)) {
      return broken('the first line continues an earlier chain: lines before it were removed (or the file was rotated: use --continued)');
    }
    if (head && (rec.seq !== head.seq + 1 || rec.prev !== head.sig)) {
      return broken(`it does not follow line ${i} (seq ${head.seq}): a line was deleted, inserted or reordered`);
    }
    head = { seq: rec.seq, sig: rec.sig };
  }
  return { ok: true, count: rows.length - unsigned, ...counts, head };
}

function isUnsigned(line: string, keys: ReadonlyMap<string, VerifyKey>): boolean {
  const p = parseRecordLine(line, keys);
  return !p.ok && p.unsigned === true;
}
