/**
 * Files over the session, for every transport: put() writes a 0600 temp file next to the
 * destination, validates it, sets mode/owner, then renames it atomically; get() reads.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { quote, sh } from '../shell/quote.js';
import type { PutOptions, RunOptions, RunResult } from './types.js';

export type RunFn = (cmd: string, opts?: RunOptions) => Promise<RunResult>;

/** Exit code of the put script when the validate command rejected the temp file. */
const VALIDATE_FAILED = 81;
/** Exit code of the get script when the file does not exist. */
const MISSING = 66;

export function tempPathFor(path: string): string {
  return posix.join(posix.dirname(path), `.${posix.basename(path)}.infra-${randomBytes(6).toString('hex')}`);
}

/** The single shell script put() runs (exported for tests). */
export function putScript(path: string, tmp: string, opts: PutOptions = {}): string {
  if (opts.mode !== undefined && !/^[0-7]{3,4}$/.test(opts.mode)) {
    throw new Error(`put ${path}: mode must be octal like "0644", got ${JSON.stringify(opts.mode)}`);
  }
  const lines = [
    // noclobber: never write through a pre-existing file or symlink at the temp name.
    sh`(umask 077 && set -C && cat > ${tmp}) || exit 1`,
    `trap ${quote(sh`rm -f ${tmp}`)} EXIT`,
  ];
  if (opts.validate) {
    const cmd = opts.validate.split('%s').join(quote(tmp));
    lines.push(`(${cmd}) 1>&2 || exit ${VALIDATE_FAILED}`);
  }
  if (opts.owner) lines.push(sh`chown ${opts.owner} ${tmp} || exit 1`);
  if (opts.group) lines.push(sh`chgrp ${opts.group} ${tmp} || exit 1`);
  if (opts.mode) lines.push(sh`chmod ${opts.mode} ${tmp} || exit 1`);
  // No mode given: keep an existing file's mode, else the usual 0644.
  else lines.push(sh`if [ -e ${path} ]; then chmod --reference=${path} ${tmp}; else chmod 0644 ${tmp}; fi || exit 1`);
  lines.push(sh`mv -f ${tmp} ${path} || exit 1`, 'trap - EXIT');
  return lines.join('\n');
}

export async function putFile(run: RunFn, path: string, bytes: string | Buffer, opts: PutOptions = {}): Promise<void> {
  const tmp = tempPathFor(path);
  const r = await run(putScript(path, tmp, opts), { stdin: bytes });
  if (r.code === 0) return;
  if (r.code === VALIDATE_FAILED) {
    throw new Error(`validate failed for ${path} (${opts.validate}), file left unchanged: ${r.stderr.trim()}`);
  }
  throw new Error(`put ${path} failed (exit ${r.code}): ${r.stderr.trim()}`);
}

export async function getFile(run: RunFn, path: string): Promise<Buffer | null> {
  const r = await run(sh`[ -e ${path} ] || exit ${MISSING}; exec cat -- ${path}`);
  if (r.code === 0) return r.stdoutBytes;
  if (r.code === MISSING) return null;
  throw new Error(`get ${path} failed (exit ${r.code}): ${r.stderr.trim()}`);
}
