/**
 * What the role ships under files/: the example application (the default artifact) and
 * NodeSource's signing key. (Apart from role.ts: vitest's transform mistakes `import.meta`
 * for the `meta` module role.ts imports.)
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const filesDir = join(dirname(fileURLToPath(import.meta.url)), 'files');

export const EXAMPLE_APP = join(filesDir, 'app');
/** NodeSource's signing key (NSolid, fingerprint 6F71 F525 2828 41EE DAF8 51B4 2F59 B5F9 9B1B E0B4). */
export const NODESOURCE_KEY_FILE = join(filesDir, 'nodesource.asc');
