/**
 * The per-host run lock: the session shell itself opens the lock file on fd 9 and flocks it,
 * so the lock lives exactly as long as the session (child commands get 9>&-).
 * Root: /run/infra/lock (+ lock.json); otherwise ${XDG_RUNTIME_DIR:-/tmp}/infra-<uid>.lock.
 * lock.json (who holds the lock) is 0600 and carries the command line redacted: `-e
 * db_password=…` must not be readable on the host.
 */
import { redact } from '../secrets/secret.js';
import type { LockMeta } from './types.js';
import { quote } from '../shell/quote.js';

/** Exit code of the lock script when someone else holds the lock (stdout: their metadata). */
export const LOCK_HELD = 75;

/**
 * Evaluated in the session shell (kind "e"). The session's uid picks the lock file, and the
 * metadata is in the script itself (quoted): no stdin, no `id`, so taking the lock forks only
 * flock and the metadata's write (it runs before every apply on every host).
 */
export function lockScript(waitMs: number, uid: number, metaJson: string): string {
  const wait = waitMs > 0 ? `-w ${Math.ceil(waitMs / 1000)}` : '-n';
  const meta = quote(metaJson);
  // Root's lock lives in /run/infra, which only root can write: the metadata is written in
  // place. Anyone else's is in a shared /tmp: a fresh file (noclobber) moved over the old one,
  // so a link planted there is never followed.
  const [file, writeMeta] =
    uid === 0
      ? ['[ -d /run/infra ] || mkdir -p /run/infra; infra_lock=/run/infra/lock', `(umask 077 && printf '%s' ${meta} > "$infra_lock.json")`]
      : [
          `infra_lock="\${XDG_RUNTIME_DIR:-/tmp}/infra-${uid}.lock"`,
          `(umask 077 && set -C && rm -f "$infra_lock.json.new" && printf '%s' ${meta} > "$infra_lock.json.new" && mv -f "$infra_lock.json.new" "$infra_lock.json")`,
        ];
  // No `exit` here: this runs in the session shell. `command exec` keeps a failed
  // redirection from ending the shell.
  return `${file}
if command exec 9>>"$infra_lock"; then
  if flock ${wait} 9; then
    ${writeMeta}
  else
    command exec 9>&-
    cat "$infra_lock.json" 2>/dev/null
    (exit ${LOCK_HELD})
  fi
else
  (exit 1)
fi`;
}

/** The metadata as written on the host: the command line redacted. */
export function lockMetaJson(meta: LockMeta): string {
  return JSON.stringify({ ...meta, command: redact(meta.command) }) + '\n';
}

export function parseHolder(stdout: string): Partial<LockMeta> {
  try {
    const v = JSON.parse(stdout) as unknown;
    return v && typeof v === 'object' ? (v as Partial<LockMeta>) : {};
  } catch {
    return {};
  }
}
