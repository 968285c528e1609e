/** `--json`: one JSON object per line per event, for machines. Redacted deep, sensitive diffs emptied. */
import type { Reporter, RunEvent } from './events.js';
import type { Diff } from '../modules/types.js';
import { MASK, isSecret, redact } from '../secrets/secret.js';
import { jsonLine } from './printable.js';

export function createJsonReporter(opts: { out: NodeJS.WritableStream }): Reporter {
  return {
    emit(e) {
      opts.out.write(jsonLine(sanitizeEvent(e)) + '\n');
    },
    async close() {},
  };
}

export const SENSITIVE_PLACEHOLDER = '(content hidden: sensitive)';

/** The event as it may leave the process: no secret value, no sensitive content. */
export function sanitizeEvent(e: RunEvent): RunEvent {
  if (e.type === 'task.result' && e.diff) e = { ...e, diff: e.diff.map(hideSensitive) };
  return redactStrings(e);
}

function hideSensitive(d: Diff): Diff {
  if ((d.kind === 'file' || d.kind === 'value') && d.sensitive) {
    return {
      ...d,
      before: d.before === null ? null : SENSITIVE_PLACEHOLDER,
      after: d.after === null ? null : SENSITIVE_PLACEHOLDER,
    };
  }
  return d;
}

/**
 * Deep copy with redact() applied to every string. Unlike redacting the serialized JSON, this
 * also masks secrets containing newlines, quotes or backslashes (TLS keys), which JSON escapes.
 */
export function redactStrings<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (isSecret(value)) return MASK as T;
  if (Array.isArray(value)) return value.map(redactStrings) as T;
  if (value && typeof value === 'object') {
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return redactStrings((value as unknown as { toJSON(): unknown }).toJSON()) as T;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [redact(k), redactStrings(v)])) as T;
  }
  return value;
}
