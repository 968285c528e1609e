/**
 * Appending a record to /var/log/infra/audit.jsonl on a host, with nothing but sh and
 * coreutils: the controller sends the canonical JSON split around the `prev` value on stdin;
 * the host fills in the hash of its own last line, hashes with sha256sum and appends, under
 * flock when available. The host's chain is the host's: it records the runs that changed it.
 */
import { randomBytes } from 'node:crypto';
import { quote } from '../shell/quote.js';
import { redact } from '../secrets/secret.js';
import { canonicalJson } from './canonical.js';
import type { AuditDraft } from './record.js';

export const REMOTE_AUDIT_FILE = '/var/log/infra/audit.jsonl';

export interface RemoteAppend {
  /** Shell command to run on the host (as root, through the session). */
  command: string;
  /** Its stdin: the record split around prev, two lines. */
  stdin: string;
}

export function remoteAppendScript(draft: AuditDraft, path: string = REMOTE_AUDIT_FILE): RemoteAppend {
  const mark = `@prev-${randomBytes(12).toString('hex')}@`;
  const body = canonicalJson({ ...draft, prev: mark });
  const at = body.indexOf(JSON.stringify(mark));
  if (at < 0 || body.indexOf(JSON.stringify(mark), at + 1) >= 0) throw new Error('audit: cannot place prev in the record');
  const before = body.slice(0, at);
  const after = body.slice(at + JSON.stringify(mark).length);
  const command = [
    'set -eu',
    `f=${quote(path)}`,
    'umask 077',
    'mkdir -p "$(dirname "$f")"',
    'exec 9>>"$f"',
    'chmod 600 "$f"',
    'if command -v flock >/dev/null 2>&1; then flock -w 60 9; fi',
    'IFS= read -r before',
    'IFS= read -r after',
    `prev=$(tail -n 1 "$f" | sed -n 's/.*,"hash":"\\([0-9a-f]\\{64\\}\\)"}$/\\1/p')`,
    'if [ -n "$prev" ]; then prevj="\\"$prev\\""; else prevj=null; fi',
    'body="$before$prevj$after"',
    "hash=$(printf '%s' \"$body\" | sha256sum | cut -c1-64)",
    'printf \'%s,"hash":"%s"}\\n\' "${body%?}" "$hash" >&9', // body ends with its closing brace
  ].join('\n');
  return { command, stdin: `${before}\n${after}\n` };
}

type Run = (cmd: string, opts: { stdin: string }) => Promise<{ code: number; stderr: string }>;

/** Runs the append through a transport's run(); a failure is a result, not an exception. */
export async function appendRemote(run: Run, draft: AuditDraft, path?: string): Promise<{ ok: boolean; error?: string }> {
  const { command, stdin } = remoteAppendScript(draft, path);
  const r = await run(command, { stdin });
  return r.code === 0 ? { ok: true } : { ok: false, error: redact(`audit append failed (exit ${r.code}): ${r.stderr.trim()}`) };
}
