/**
 * Where infra itself lives, whether it runs from its TypeScript sources (tsx) or from the
 * compiled build (`npm run build`: bundled under <root>/dist/): the shared templates/ and
 * roles/ are read from the root either way.
 */
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);

/** True when this process runs the compiled JavaScript in dist/ (the sources are .ts). */
export const COMPILED = here.endsWith('.js');

/** The package's top-level directory (package.json, roles/, templates/). */
export const INFRA_HOME = COMPILED ? parentOfDist(dirname(here)) : resolve(dirname(here), '..');

/** The compiled build's directory: dist/<path under the root>.js mirrors <path>.ts. */
export const DIST_DIR = resolve(INFRA_HOME, 'dist');

/** Where infra keeps what it can rebuild (compiled user roles, compiled templates): ${XDG_CACHE_HOME:-~/.cache}/infra. */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'infra');
}

/** Bundled, this code sits in an entry point or a chunk at some depth under dist/. */
function parentOfDist(dir: string): string {
  for (let d = dir; d !== dirname(d); d = dirname(d)) if (basename(d) === 'dist') return dirname(d);
  throw new Error(`compiled infra outside a dist/ directory: ${here}`);
}
