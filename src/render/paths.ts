/** Keeps template and role-file paths inside their directory (no ../, absolute paths or symlinks out). */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { UserError } from '../errors.js';

/**
 * Resolves `rel` under `baseDir` and proves the result stays there, following symlinks:
 * a link inside the role that points at /etc/shadow is refused like "../../etc/shadow".
 */
export function resolveInside(baseDir: string, rel: string): string {
  const hint = `paths are relative to ${baseDir} and must stay inside it`;
  if (rel === '' || rel.includes('\0')) throw new UserError(`invalid path "${rel}"`, { hint });
  if (isAbsolute(rel)) throw new UserError(`absolute path "${rel}" is not allowed here`, { hint });
  if (rel.split(/[\\/]+/).includes('..')) throw new UserError(`path "${rel}" must not contain ".."`, { hint });
  const target = resolve(baseDir, rel);
  if (!isWithin(resolve(baseDir), target)) throw new UserError(`path "${rel}" leaves ${baseDir}`, { hint });
  if (!existsSync(baseDir)) return target;
  const realBase = realpathSync(baseDir);
  const realTarget = realpathOfNearestExisting(target);
  if (!isWithin(realBase, realTarget)) {
    throw new UserError(`path "${rel}" leads outside ${baseDir} through a symlink (to ${realTarget})`, { hint });
  }
  return target;
}

function isWithin(base: string, p: string): boolean {
  const r = relative(base, p);
  return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
}

/** realpath of the path, or of its nearest existing ancestor joined with the missing tail. */
function realpathOfNearestExisting(p: string): string {
  let existing = p;
  const tail: string[] = [];
  while (!existsSync(existing)) {
    const parent = dirname(existing);
    if (parent === existing) return p;
    tail.unshift(existing.slice(parent.length + (parent.endsWith(sep) ? 0 : 1)));
    existing = parent;
  }
  return join(realpathSync(existing), ...tail);
}
