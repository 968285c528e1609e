/**
 * The per-host run lock: the session process itself opens the lock file and flocks it (frame
 * kind "l", session-script.ts), so the lock lives exactly as long as the session and no
 * command inherits it. Root: /run/infra/lock (+ lock.json); otherwise
 * ${XDG_RUNTIME_DIR:-/tmp}/infra-<uid>.lock. lock.json (who holds the lock) is 0600 and carries
 * the command line redacted: `-e db_password=…` must not be readable on the host. Root's is
 * written in place (/run/infra is root's); anyone else's is a fresh file (O_EXCL) moved over
 * the old one, so a link planted in the shared directory is never followed.
 */
import { redact } from '../secrets/secret.js';
import type { LockMeta } from './types.js';

/** Exit code of taking the lock (frame kind "l") when someone else holds it (stdout: their metadata). */
export const LOCK_HELD = 75;

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
