/**
 * `npm run build`: the CLI, the library and the roles shipped with it compiled to plain
 * JavaScript in dist/ (tsconfig.build.json), so a command starts without compiling TypeScript.
 * bin/infra uses it while it is fresh (bin/compiled.mjs) and runs the sources otherwise.
 */
import { cpSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
// Compiled beside dist/ and swapped in at the end: a command started meanwhile runs the old
// build or the sources, never half a build.
const staging = join(root, 'dist.new');
rmSync(staging, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', staging], { stdio: 'inherit' });
if (r.status !== 0) {
  rmSync(staging, { recursive: true, force: true });
  process.exit(r.status ?? 1);
}
// A role may read its own files beside its module (new URL('./files/x', import.meta.url)):
// the compiled role finds them beside it too.
cpSync(join(root, 'roles'), join(staging, 'roles'), { recursive: true, filter: (src) => !src.endsWith('.ts') });
// The build's freshness stamp, and the package scope in which a compiled role's
// `import 'infra'` resolves to the compiled library.
writeFileSync(
  join(staging, 'package.json'),
  JSON.stringify({ name: 'infra', private: true, type: 'module', exports: { '.': './src/index.js' } }, null, 2) + '\n',
);
rmSync(dist, { recursive: true, force: true });
renameSync(staging, dist);
