/**
 * Importing a role's TypeScript. From the sources, tsx is registered by bin/infra (and vitest
 * transpiles by itself): a plain import. From the compiled build (dist/), the roles that ship
 * with infra are compiled too (dist/roles/<name>/*.js, as fresh as the CLI: bin/infra checks
 * both); any other role — a user's repository — loads through tsx, registered on first need,
 * with `import 'infra'` resolved to the compiled library this process runs, so there is one
 * copy of it (one UserError class, one Secret class).
 */
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { isAbsolute, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { COMPILED, DIST_DIR, INFRA_HOME } from '../home.js';

let typeScriptLoader: Promise<void> | undefined;

/** The URL to import for a role's source file (its role.ts, or a module of it the docs read). */
export async function roleModuleUrl(file: string): Promise<string> {
  if (!COMPILED) return pathToFileURL(file).href;
  const rel = relative(INFRA_HOME, file);
  if (!rel.startsWith('..') && !isAbsolute(rel)) {
    const compiled = join(DIST_DIR, rel.replace(/\.ts$/, '.js'));
    if (existsSync(compiled)) return pathToFileURL(compiled).href;
  }
  await (typeScriptLoader ??= registerTypeScript());
  return pathToFileURL(file).href;
}

async function registerTypeScript(): Promise<void> {
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  // Registered after tsx, so it is asked first.
  register(pathToFileURL(join(DIST_DIR, 'src', 'playbook', 'infra-resolve-hook.js')), {
    data: { infra: pathToFileURL(join(DIST_DIR, 'src', 'index.js')).href },
  });
}
