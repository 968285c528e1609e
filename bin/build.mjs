/**
 * `npm run build`: the CLI, the library and the roles shipped with it bundled to plain
 * JavaScript in dist/, so a command starts without compiling TypeScript and without resolving
 * and loading some 300 modules one by one. bin/infra uses it while it is fresh (bin/compiled.mjs)
 * and runs the sources otherwise.
 *
 * Layout (the paths the rest of infra relies on stay those of the sources):
 *   dist/src/cli/main.js      the CLI entry point; each command's work is a lazy chunk
 *   dist/src/index.js         the library roles import as 'infra' (dist/package.json exports it)
 *   dist/src/playbook/infra-resolve-hook.js   the module hook role-import.ts registers
 *   dist/chunks/*.js          code shared by those entry points: ONE copy of the library
 *   dist/roles/<name>/role.js each shipped role, its own modules inlined, 'infra' left to resolve
 */
import { cpSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
// Built beside dist/ and swapped in at the end: a command started meanwhile runs the old
// build or the sources, never half a build.
const staging = join(root, 'dist.new');
rmSync(staging, { recursive: true, force: true });

// The type check the tsc build gave: a build with type errors is no build.
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const typecheck = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--noEmit'], { stdio: 'inherit' });
if (typecheck.status !== 0) process.exit(typecheck.status ?? 1);

const common = {
  absWorkingDir: root,
  outbase: root,
  outdir: staging,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  // Bundled CommonJS (handlebars) may require() Node's built-ins: give ESM output a require.
  banner: { js: "import { createRequire as __infraCreateRequire } from 'node:module'; const require = __infraCreateRequire(import.meta.url);" },
};

try {
  await build({
    ...common,
    entryPoints: ['src/cli/main.ts', 'src/index.ts', 'src/playbook/infra-resolve-hook.ts'],
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    // Native code, wasm and the TypeScript loader stay packages, loaded when a command needs them.
    external: ['ssh2', 'ssh2/*', '@hpcc-js/wasm-graphviz', 'listr2', 'tsx', 'tsx/*', 'esbuild'],
  });
  const roles = readdirSync(join(root, 'roles'), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => `roles/${e.name}/role.ts`);
  await build({ ...common, entryPoints: roles, external: ['infra'] });
} catch {
  rmSync(staging, { recursive: true, force: true });
  process.exit(1);
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
