/**
 * Importing a role's TypeScript. From the sources, tsx is registered by bin/infra (and vitest
 * transpiles by itself): a plain import. From the compiled build (dist/), the roles that ship
 * with infra are compiled too (dist/roles/<name>/role.js, as fresh as the CLI: bin/infra checks
 * both); any other role — a user's repository — is compiled once into the user's cache
 * (role-cache.ts) or, when it cannot be, loads through tsx, registered on first need. Either
 * way its `import 'infra'` resolves to the compiled library this process runs, so there is one
 * copy of it (one UserError class, one Secret class).
 */
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { isAbsolute, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { COMPILED, DIST_DIR, INFRA_HOME, userCacheDir } from '../home.js';
import { cachedRoleUrl } from './role-cache.js';

const INFRA_URL = pathToFileURL(join(DIST_DIR, 'src', 'index.js')).href;
let typeScriptLoader: Promise<void> | undefined;

/** The URL to import for a role's source file (its role.ts, or a module of it the docs read). */
export async function roleModuleUrl(file: string): Promise<string> {
  if (!COMPILED) return pathToFileURL(file).href;
  const rel = relative(INFRA_HOME, file);
  if (!rel.startsWith('..') && !isAbsolute(rel)) {
    const compiled = join(DIST_DIR, rel.replace(/\.ts$/, '.js'));
    if (existsSync(compiled)) return pathToFileURL(compiled).href;
  }
  const cached = await cachedRoleUrl(file, { infraUrl: INFRA_URL, cacheDir: join(userCacheDir(), 'roles') });
  if (cached) return cached;
  await (typeScriptLoader ??= registerTypeScript());
  return pathToFileURL(file).href;
}

async function registerTypeScript(): Promise<void> {
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  // Registered after tsx, so it is asked first.
  register(pathToFileURL(join(DIST_DIR, 'src', 'playbook', 'infra-resolve-hook.js')), { data: { infra: INFRA_URL } });
}
