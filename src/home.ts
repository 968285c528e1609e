/**
 * Where infra itself lives, whether it runs from its TypeScript sources (tsx) or from the
 * compiled build (`npm run build`: <root>/dist/src/...): the shared templates/ and roles/ are
 * read from the root either way.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);

/** True when this process runs the compiled JavaScript in dist/ (the sources are .ts). */
export const COMPILED = here.endsWith('.js');

/** The package's top-level directory (package.json, roles/, templates/). */
export const INFRA_HOME = resolve(dirname(here), ...(COMPILED ? ['..', '..'] : ['..']));

/** The compiled build's directory: dist/<path under the root>.js mirrors <path>.ts. */
export const DIST_DIR = resolve(INFRA_HOME, 'dist');
