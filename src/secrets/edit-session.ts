/**
 * Plaintext for `infra vault edit` lives only in RAM: a 0600 file in a 0700 directory on
 * /dev/shm (tmpfs), overwritten and removed afterwards whatever happens. No tmpfs, no edit.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readFileSync, rmSync, statSync, openSync, writeSync, fsyncSync, closeSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from '../errors.js';

export const TMPFS_DIR = '/dev/shm';

export interface EditOptions {
  /** Shell command of the editor ($VISUAL, $EDITOR, else vi); the file is passed as "$1". */
  editor: string;
  /** Directory on a RAM file system for the plaintext (default /dev/shm). */
  tmpfsDir?: string;
  /** Called with the edited text; return a message to re-open the editor, or undefined to finish. */
  accept(edited: string): string | undefined;
  /** Re-open the editor after a rejected edit (only sensible on a terminal). */
  retry: boolean;
}

export function defaultEditor(env: NodeJS.ProcessEnv = process.env): string {
  return env.VISUAL || env.EDITOR || 'vi';
}

/** Runs the editor on `text` in RAM; returns the accepted edited text (may equal the input). */
export function editInRam(name: string, text: string, o: EditOptions): string {
  const base = o.tmpfsDir ?? TMPFS_DIR;
  if (!existsSync(base) || !statSync(base).isDirectory()) {
    throw new UserError(`${base} is missing: refusing to write decrypted values to a persistent disk`, {
      hint: 'use `infra vault decrypt FILE` / `encrypt FILE` through a pipe, or edit on a machine with a tmpfs /dev/shm',
    });
  }
  const dir = mkdtempSync(join(base, 'infra-vault-'));
  const path = join(dir, basename(name));
  const ignoreInterrupt = () => {}; // Ctrl-C belongs to the editor; we must live to clean up
  process.on('SIGINT', ignoreInterrupt);
  try {
    writeFileSync(path, text, { mode: 0o600 });
    let rejected: string | undefined;
    for (;;) {
      const r = spawnSync('/bin/sh', ['-c', `${o.editor} "$1"`, 'infra-vault-edit', path], { stdio: 'inherit' });
      if (r.error || r.status !== 0) {
        throw new UserError(`the editor (${o.editor}) failed${r.status !== null ? ` with exit code ${r.status}` : ''}: ${name} is unchanged`);
      }
      const edited = readFileSync(path, 'utf8');
      if (edited === rejected) throw new UserError(`gave up: ${name} is unchanged`);
      const problem = o.accept(edited);
      if (problem === undefined) return edited;
      if (!o.retry) throw new UserError(`${problem}\n${name} is unchanged`);
      process.stderr.write(`error: ${problem}\nre-opening the editor (quit without saving to give up)...\n`);
      rejected = edited;
    }
  } finally {
    process.off('SIGINT', ignoreInterrupt);
    shred(path);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Overwrites a file with zeros before unlinking it (cheap; on tmpfs it mostly hides from core dumps). */
export function shred(path: string): void {
  try {
    const size = statSync(path).size;
    const fd = openSync(path, 'r+');
    try {
      writeSync(fd, Buffer.alloc(size));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // already gone
  }
  rmSync(path, { force: true });
}

/** Replaces a file atomically, keeping its mode (0600 for a new file). */
export function writeFileAtomic(path: string, text: string): void {
  const mode = existsSync(path) ? statSync(path).mode & 0o7777 : 0o600;
  const tmp = join(dirname(path), `.${basename(path)}.infra-${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
