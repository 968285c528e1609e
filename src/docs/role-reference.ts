/**
 * The variables reference of every role (docs/roles/<role>.md), from each role's zod schema.
 * Roles do not depend on an environment, so this is written once, not per inventory.
 */
import { access, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { loadRole, type RoleDef } from '../playbook/role.js';
import { code, generatedBy, table } from './markdown.js';
import { schemaRows } from './schema-table.js';

export const ROLES_COMMAND = 'infra docs roles';

/** Every role in the roles directories (the first directory that has a name wins), by name. */
export async function listRoles(dirs: readonly string[]): Promise<RoleDef[]> {
  const names = new Set<string>();
  for (const d of dirs) {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory() && (await exists(join(d, e.name, 'role.ts')))) names.add(e.name);
  }
  return Promise.all([...names].sort().map((n) => loadRole(n, dirs)));
}

/** File name → content: one page per role and an index. `cwd` makes the links to the roles' sources. */
export async function rolePages(roles: RoleDef[], cwd: string): Promise<Map<string, string>> {
  const pages = new Map<string, string>();
  const index = [generatedBy(ROLES_COMMAND), '', '# Roles: variables reference', '', "Each role's variables with type, default and description, generated from its zod schema (`vars` in `role.ts`). They are the lowest precedence level: set them in `group_vars/`, `host_vars/`, play vars or `-e` (`infra explain VAR --host H --role ROLE` shows where a value comes from).", ''];
  const rows: string[][] = [];
  for (const role of roles) {
    const src = sourceLink(cwd, role.dir);
    const readme = (await exists(join(role.dir, 'README.md'))) ? `${src}/README.md` : undefined;
    const vars = schemaRows(role.vars);
    pages.set(
      `${role.name}.md`,
      [
        generatedBy(ROLES_COMMAND),
        '',
        `# Role \`${role.name}\`: variables`,
        '',
        `Generated from the zod schema in [\`${src.replace(/^(\.\.\/)+/, '')}/role.ts\`](${src}/role.ts)${readme ? `; what the role does and why: [README](${readme})` : ''}.`,
        '',
        vars.length ? table(['variable', 'type', 'default', 'description'], vars.map((v) => [code(v.path), v.type, v.default === 'required' ? '**required**' : v.default === 'none' ? 'none' : code(v.default), v.description])) : 'This role takes no variables.',
        '',
      ].join('\n'),
    );
    rows.push([`[${role.name}](${role.name}.md)`, String(vars.length), readme ? `[README](${readme})` : '']);
  }
  index.push(table(['role', 'variables', 'about'], rows), '');
  pages.set('README.md', index.join('\n'));
  return pages;
}

/** The role's directory as a link from docs/roles/ (repository-relative, "/" separators). */
function sourceLink(cwd: string, dir: string): string {
  return `../../${relative(cwd, dir).split(sep).join('/')}`;
}

const exists = (p: string) => access(p).then(() => true, () => false);
