/**
 * A user's role compiled once into the cache (role-cache.ts): served while every input file is
 * byte-for-byte what was compiled, rebuilt on any edit, and refused (→ tsx) where a cached
 * bundle would not behave like the sources. Real esbuild, real files.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedRoleUrl } from '../../../src/playbook/role-cache.js';
import { userCacheDir } from '../../../src/home.js';

let dir: string;
let cacheDir: string;
let infraUrl: string;
let role: string;

function write(rel: string, text: string): string {
  const path = join(dir, rel);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

/** Compiles (or finds) the role and imports it. */
async function load(): Promise<{ url: string; mod: Record<string, unknown> }> {
  const url = await cachedRoleUrl(role, { infraUrl, cacheDir });
  if (!url) throw new Error('not cached');
  return { url, mod: (await import(url)) as Record<string, unknown> };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'infra-role-cache-'));
  cacheDir = join(dir, 'cache');
  // Stands in for the compiled library: the role must import this very module.
  infraUrl = pathToFileURL(write('lib/infra.mjs', 'export const library = { id: Math.random() };\n')).href;
  write('roles/web/vars.ts', 'export const port: number = 8080;\n');
  role = write(
    'roles/web/role.ts',
    "import { library } from 'infra';\nimport { port } from './vars.js';\nexport default { port, library, where: import.meta.url };\n",
  );
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('cachedRoleUrl', () => {
  it('compiles into the cache dir, with infra the given library and import.meta.url the source file', async () => {
    const { url, mod } = await load();
    expect(fileURLToPath(url).startsWith(cacheDir)).toBe(true);
    const lib = (await import(infraUrl)) as { library: unknown };
    expect(mod.default).toEqual({ port: 8080, library: lib.library, where: pathToFileURL(role).href });
    expect((mod.default as { library: unknown }).library).toBe(lib.library); // one copy, not a bundled twin
  });

  it('serves the cached module while no input changed (no rebuild)', async () => {
    const first = await load();
    // Marks the cached module: a rebuild would replace it.
    writeFileSync(fileURLToPath(first.url), 'export default "served from the cache";\n');
    expect(await cachedRoleUrl(role, { infraUrl, cacheDir })).toBe(first.url);
    expect(readFileSync(fileURLToPath(first.url), 'utf8')).toContain('served from the cache');
  });

  it.each([
    ['the role file', 'roles/web/role.ts', "import { port } from './vars.js';\nexport default { port, edited: true };\n", { port: 8080, edited: true }],
    ['a module it imports', 'roles/web/vars.ts', 'export const port: number = 9090;\n', { port: 9090 }],
  ])('an edit to %s is seen on the next load', async (_what, rel, text, expected) => {
    await load();
    write(rel, text);
    const { mod } = await load();
    expect(mod.default).toMatchObject(expected);
  });

  it('an edit that keeps size and mtime is still seen (content hashes, not timestamps)', async () => {
    await load();
    const vars = join(dir, 'roles/web/vars.ts');
    const before = statSync(vars);
    writeFileSync(vars, 'export const port: number = 1234;\n'); // same length as 8080
    utimesSync(vars, before.atime, before.mtime);
    expect(statSync(vars).size).toBe(before.size);
    const { mod } = await load();
    expect(mod.default).toMatchObject({ port: 1234 });
  });

  it('a new import added by the role is an input too', async () => {
    await load();
    write('roles/web/extra.ts', 'export const extra = "one";\n');
    write('roles/web/role.ts', "import { extra } from './extra.js';\nexport default { extra };\n");
    expect((await load()).mod.default).toEqual({ extra: 'one' });
    write('roles/web/extra.ts', 'export const extra = "two";\n');
    expect((await load()).mod.default).toEqual({ extra: 'two' });
  });

  it('a deleted input rebuilds (and a role that no longer compiles is not cached)', async () => {
    await load();
    rmSync(join(dir, 'roles/web/vars.ts'));
    expect(await cachedRoleUrl(role, { infraUrl, cacheDir })).toBeUndefined();
  });

  it.each([
    ['imports a package (it would resolve from the cache dir)', "import { z } from 'zod';\nexport default z;\n"],
    ['reads import.meta beyond its location', "export default import.meta.resolve('./vars.js');\n"],
    ['has a syntax error (tsx reports it as before)', 'export default {;\n'],
    ['uses CommonJS names (tsx may run it as CommonJS)', 'export default __dirname;\n'],
  ])('a role that %s is not cached', async (_what, text) => {
    write('roles/web/role.ts', text);
    expect(await cachedRoleUrl(role, { infraUrl, cacheDir })).toBeUndefined();
  });

  it("Node's built-ins are fine", async () => {
    write('roles/web/role.ts', "import { join } from 'node:path';\nimport os from 'os';\nexport default join('a', typeof os.cpus);\n");
    expect((await load()).mod.default).toBe('a/function');
  });

  it('another library build is another cache entry', async () => {
    const first = await load();
    infraUrl = pathToFileURL(write('lib/other.mjs', 'export const library = "other";\n')).href;
    const second = await load();
    expect(second.url).not.toBe(first.url);
    expect(second.mod.default).toMatchObject({ library: 'other' });
    expect(readdirSync(cacheDir)).toHaveLength(2);
  });

  it("the user's cache is under XDG_CACHE_HOME, else ~/.cache", () => {
    expect(userCacheDir({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/infra');
    expect(userCacheDir({})).toMatch(/\/\.cache\/infra$/);
  });
});
