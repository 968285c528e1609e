/**
 * Is the compiled build usable? `npm run build` writes dist/ (bin/build.mjs) and, last, its
 * stamp dist/package.json. The build is fresh when the stamp is newer than every file under
 * src/ and roles/ (the roles' own files are copied into dist/ too) and than the installed
 * packages (the bundle carries zod, yaml, handlebars...: an `npm ci` or `npm install` rewrites
 * node_modules/.package-lock.json): an edit never runs stale code.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The compiled CLI's entry point under root, or undefined when there is none or it is stale. */
export function freshBuild(root) {
  const main = join(root, 'dist', 'src', 'cli', 'main.js');
  const stamp = join(root, 'dist', 'package.json');
  if (!existsSync(stamp) || !existsSync(main)) return undefined;
  const built = statSync(stamp).mtimeMs;
  const installed = ['package.json', join('node_modules', '.package-lock.json')].map((f) => statSync(join(root, f), { throwIfNoEntry: false })?.mtimeMs ?? 0);
  return Math.max(...installed) <= built && ['src', 'roles'].every((dir) => newestSource(join(root, dir)) <= built) ? main : undefined;
}

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(path));
    else newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}
