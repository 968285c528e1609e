/**
 * Files over the session, for every transport. put() never lets a user who can write in the
 * destination's path redirect what root does:
 *  - it walks into the destination directory and pins it (shell/pinned-dir.ts): a symlink
 *    only root could have placed is followed, any other is refused;
 *  - it refuses a directory that someone other than root and the file's owner can write;
 *  - the temp file is created with O_EXCL (noclobber) and umask 077 and held open on fd 3:
 *    its owner and mode are set through /proc/self/fd/3, i.e. on the inode put() created,
 *    whatever is at its name by then; the rename checks the name still is that inode.
 * The cleanup trap is armed before the first byte is written: a full disk leaves no temp file.
 * With `keep`, the file being replaced is kept for rollback right before the rename (keep.ts).
 * remove() removes through the pinned parent directory, keeping what it removes the same way.
 * get() reads.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { ACCOUNT_HINT, isAccountId } from '../shell/account.js';
import { PINNED_DIR_FUNCTIONS, UNSAFE_PATH } from '../shell/pinned-dir.js';
import { sh } from '../shell/quote.js';
import { KEEP_FAILED, keepStep, type KeepOptions } from './keep.js';
import type { PutOptions, RunOptions, RunResult } from './types.js';
import { SESSION_UID } from './session-script.js';

export type RunFn = (cmd: string, opts?: RunOptions) => Promise<RunResult>;

/** Exit code of the put script when the validate command rejected the temp file. */
const VALIDATE_FAILED = 81;
/** Exit code of the get script when the file does not exist. */
const MISSING = 66;
/** get() reads whole files into memory: beyond this it fails instead of truncating. */
export const GET_MAX_BYTES = 1024 * 1024 * 1024;

/** The temp file's name, in the destination directory. */
export function tempNameFor(path: string): string {
  return `.${posix.basename(path)}.infra-${randomBytes(6).toString('hex')}`;
}

/** Bad input that reached the transport unvalidated (modules validate it first): a bug, not a user error. */
function checkPutInput(path: string, opts: PutOptions): void {
  if (!path.startsWith('/') || path.endsWith('/') || posix.normalize(path) !== path) {
    throw new Error(`put ${JSON.stringify(path)}: the path must be absolute and normalized (no "..", "." or "//")`);
  }
  if (opts.mode !== undefined && !/^[0-7]{3,4}$/.test(opts.mode)) {
    throw new Error(`put ${path}: mode must be octal like "0644", got ${JSON.stringify(opts.mode)}`);
  }
  for (const key of ['owner', 'group'] as const) {
    const v = opts[key];
    if (v !== undefined && !isAccountId(v)) throw new Error(`put ${path}: ${key} must be ${ACCOUNT_HINT}, got ${JSON.stringify(v)}`);
  }
}

/** chown's OWNER[:GROUP] / :GROUP argument, or undefined when neither is set. */
export function chownSpec(owner?: string, group?: string): string | undefined {
  if (owner === undefined && group === undefined) return undefined;
  return `${owner ?? ''}${group === undefined ? '' : `:${group}`}`;
}

/** The uid that may own the destination directory besides root: the file's owner, or the session's user. */
function ownerUidExpr(owner?: string): string {
  if (owner === undefined) return SESSION_UID;
  return /^\d+$/.test(owner) ? owner : sh`$(id -u -- ${owner})`;
}

/** The single shell script put() runs, stdin = the content (exported for tests). */
export function putScript(path: string, tmpName: string, opts: PutOptions = {}): string {
  checkPutInput(path, opts);
  const lines = [
    PINNED_DIR_FUNCTIONS,
    sh`infra_walk ${posix.dirname(path)}`,
    `u=${ownerUidExpr(opts.owner)} || exit 1`,
    'infra_own_dir "$u"',
    sh`t=${tmpName} n=${posix.basename(path)}`,
    // The temp name must still be the inode we hold open (a user may own this directory).
    `infra_same() { [ ! -L "./$t" ] && [ "./$t" -ef /proc/self/fd/3 ] || infra_refuse "$PWD/$t was replaced while being written"; }`,
    // Armed before the first byte: a failed write (full disk) leaves no partial temp file.
    `trap 'rm -f -- "./$t"' EXIT`,
    `trap 'exit 129' HUP INT TERM`,
    'umask 077',
    'set -C',
    'command exec 3>"./$t" || exit 1',
    'cat >&3 || exit 1',
  ];
  const spec = chownSpec(opts.owner, opts.group);
  if (spec) lines.push(sh`chown -- ${spec} /proc/self/fd/3 || exit 1`);
  // chmod after chown: chown clears setuid/setgid bits.
  if (opts.mode) lines.push(sh`chmod -- ${opts.mode} /proc/self/fd/3 || exit 1`);
  // No mode given: keep an existing file's mode, else the usual 0644.
  else lines.push(`if [ -f "./$n" ] && [ ! -L "./$n" ]; then m=$(stat -c %a -- "./$n") || exit 1; else m=0644; fi; chmod -- "$m" /proc/self/fd/3 || exit 1`);
  if (opts.validate) {
    lines.push('infra_same', `(${opts.validate.split('%s').join('"$PWD/$t"')}) 1>&2 || exit ${VALIDATE_FAILED}`);
  }
  if (opts.keep) lines.push(keepStep(path, opts.keep, 'n', 't', opts));
  // -T: never move into a directory someone put at the destination's name.
  lines.push('infra_same', 'mv -fT -- "./$t" "./$n" || exit 1', 'trap - EXIT');
  return lines.join('\n');
}

export async function putFile(run: RunFn, path: string, bytes: string | Buffer, opts: PutOptions = {}): Promise<void> {
  const r = await run(putScript(path, tempNameFor(path), opts), { stdin: bytes });
  if (r.code === 0) return;
  if (r.code === VALIDATE_FAILED) {
    throw new Error(`validate failed for ${path} (${opts.validate}), file left unchanged: ${r.stderr.trim()}`);
  }
  if (r.code === UNSAFE_PATH) throw new Error(`put ${path}: ${r.stderr.trim()}`);
  if (r.code === KEEP_FAILED) throw keepFailed(path, r);
  throw new Error(`put ${path} failed (exit ${r.code}): ${r.stderr.trim()}`);
}

const keepFailed = (path: string, r: RunResult): Error =>
  new Error(`${path} left unchanged: what it replaces could not be kept for rollback (disk full?): ${r.stderr.trim()}`);

/** The script remove() runs: the path (file, link or directory tree) goes, kept first when asked. */
export function removeScript(given: string, keep?: KeepOptions): string {
  const path = posix.normalize(given).replace(/(.)\/+$/, '$1');
  if (!path.startsWith('/') || path === '/') throw new Error(`remove ${JSON.stringify(given)}: the path must be absolute, and not /`);
  return [
    PINNED_DIR_FUNCTIONS,
    sh`infra_walk ${posix.dirname(path)}`,
    sh`n=${posix.basename(path)}`,
    'if [ -e "./$n" ] || [ -L "./$n" ]; then',
    ...(keep ? [keepStep(path, keep, 'n')] : []),
    '  rm -rf -- "./$n" || exit 1',
    'fi',
  ].join('\n');
}

export async function removeFile(run: RunFn, path: string, keep?: KeepOptions): Promise<void> {
  const r = await run(removeScript(path, keep));
  if (r.code === 0) return;
  if (r.code === UNSAFE_PATH) throw new Error(`remove ${path}: ${r.stderr.trim()}`);
  if (r.code === KEEP_FAILED) throw keepFailed(path, r);
  throw new Error(`remove ${path} failed (exit ${r.code}): ${r.stderr.trim()}`);
}

export async function getFile(run: RunFn, path: string): Promise<Buffer | null> {
  const r = await run(sh`[ -e ${path} ] || exit ${MISSING}; exec cat -- ${path}`, { maxOutputBytes: GET_MAX_BYTES });
  if (r.code === MISSING) return null;
  if (r.code !== 0) throw new Error(`get ${path} failed (exit ${r.code}): ${r.stderr.trim()}`);
  if (r.dropped) throw new Error(`get ${path}: the file is larger than ${GET_MAX_BYTES} bytes`);
  return r.stdoutBytes;
}
