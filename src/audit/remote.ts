/**
 * The hosts' copies: every record is appended, byte for byte as the controller signed it, to
 * /var/log/infra/audit.jsonl (root, 0600) on each host it touched (record.ts `recipients`),
 * with nothing but sh and coreutils, under flock when available. A host cannot sign (it holds
 * no key); it keeps what it was sent, so its copy carries the controller's chain head at each
 * run that touched it: a controller file cut short or rewritten no longer matches it.
 */
import { dirname } from 'node:path';
import { quote } from '../shell/quote.js';
import { redact } from '../secrets/secret.js';

export const REMOTE_AUDIT_FILE = '/var/log/infra/audit.jsonl';

export interface RemoteAppend {
  /** Shell command to run on the host (as root, through the session). */
  command: string;
  /** Its stdin: the signed line. */
  stdin: string;
}

export function remoteAppendScript(line: string, path: string = REMOTE_AUDIT_FILE): RemoteAppend {
  if (line.includes('\n')) throw new Error('audit: a record line cannot contain a newline');
  // Builtins where they do the job (`[ -d ]`, `read`/`printf`): this runs on every host a run
  // changed, and each fork costs the host more than the whole script otherwise.
  const command = [
    'set -eu',
    `f=${quote(path)}`,
    'umask 077',
    `[ -d ${quote(dirname(path))} ] || mkdir -p ${quote(dirname(path))}`,
    'exec 9>>"$f"',
    'chmod 600 "$f"',
    'if command -v flock >/dev/null 2>&1; then flock -w 60 9; fi',
    // A line cut short earlier (a full disk) must not swallow this one.
    'if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then printf \'\\n\' >&9; fi',
    // The record is one line without NUL bytes: `read -r` with an empty IFS keeps it byte for byte.
    'IFS= read -r line',
    'printf \'%s\\n\' "$line" >&9',
  ].join('\n');
  return { command, stdin: `${line}\n` };
}

type Run = (cmd: string, opts: { stdin: string }) => Promise<{ code: number; stderr: string }>;

/** Runs the append through a transport's run(); a failure is a result, not an exception. */
export async function appendRemote(run: Run, line: string, path?: string): Promise<{ ok: boolean; error?: string }> {
  const { command, stdin } = remoteAppendScript(line, path);
  const r = await run(command, { stdin });
  return r.code === 0 ? { ok: true } : { ok: false, error: redact(`audit append failed (exit ${r.code}): ${r.stderr.trim()}`) };
}
