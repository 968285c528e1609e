/**
 * `infra check`: every runbook link of an alert rule points at a page that exists. Rules live
 * in a role's files/ or templates/ (`runbook_url: ...` in a Prometheus rules file); a link
 * points into the repository holding the role when it is
 *   - a path with `docs/runbooks/` in it, relative or inside a URL of the repository's web UI
 *     (`https://git.example.com/infra/blob/main/docs/runbooks/host-down.md`, or a templated
 *     base such as `{{vars.repo_url}}/docs/runbooks/host-down.md`),
 *   - a templated runbook base followed by the page (`{{vars.runbook_base_url}}/host-down.md`:
 *     the base is configured per inventory, the page is under docs/runbooks/),
 *   - any other relative path (from the repository's top directory).
 * URLs to other sites are not ours to check; a page name built by a template expression
 * cannot be checked without rendering and is left to review.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { UserError, UserErrors } from '../errors.js';

export const RUNBOOKS_DIR = 'docs/runbooks';

export interface RunbookLink {
  file: string;
  line: number;
  col: number;
  url: string;
  /** The page it must name, relative to the repository, or undefined when it is not ours to check. */
  page?: string;
}

/**
 * Checks every role in `rolesDirs` (each directory's parent is the repository its links
 * point into). Throws every broken link at once (file:line:col); returns how many were checked.
 */
export async function checkRunbookLinks(rolesDirs: readonly string[], cwd: string): Promise<number> {
  const errors: UserError[] = [];
  let checked = 0;
  for (const dir of new Set(rolesDirs)) {
    const repo = dirname(dir);
    for (const link of await runbookLinks(dir)) {
      if (!link.page) continue;
      checked++;
      if (await isFile(join(repo, link.page))) continue;
      errors.push(
        new UserError(`runbook link ${link.url} points at a missing page: ${link.page}`, {
          pos: { file: shown(link.file, cwd), line: link.line, col: link.col },
          hint: `write ${link.page} (symptoms, the commands to run, how to verify the fix), or fix the link`,
        }),
      );
    }
  }
  if (errors.length) throw errors.length === 1 ? errors[0] : new UserErrors(errors);
  return checked;
}

/** Every `runbook_url` in the files/ and templates/ of every role under `rolesDir`. */
export async function runbookLinks(rolesDir: string): Promise<RunbookLink[]> {
  const out: RunbookLink[] = [];
  const roles = (await readdir(rolesDir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  for (const role of roles) {
    for (const sub of ['files', 'templates']) {
      const files = await filesUnder(join(rolesDir, role, sub));
      // Read side by side: one after another, ~100 small files cost `infra check` 50 ms of waiting.
      const texts = await Promise.all(files.map((f) => readFile(f, 'utf8')));
      for (const [k, file] of files.entries()) {
        const text = texts[k];
        if (text.includes('\0')) continue; // binary
        text.split('\n').forEach((line, i) => {
          for (const m of line.matchAll(LINK)) {
            const url = m[2] ?? m[3] ?? m[4];
            out.push({ file, line: i + 1, col: line.indexOf(url, m.index! + 'runbook_url'.length) + 1, url, page: pageOf(url) });
          }
        });
      }
    }
  }
  return out;
}

/** `runbook_url: X`, `"runbook_url": "X"`, `runbook_url = 'X'`: quoted, or up to a space, comma or brace ({{expressions}} kept whole). */
const LINK = /\brunbook_url(["']?)\s*[:=]\s*(?:"([^"]*)"|'([^']*)'|((?:\{\{[^}]*\}\}|[^\s"',{}])+))/g;

/** The repository page a link names, or undefined (another site, or a name computed by a template). */
export function pageOf(url: string): string | undefined {
  const path = url.replace(/[?#].*$/, '');
  const at = path.indexOf(`${RUNBOOKS_DIR}/`);
  let page: string | undefined;
  if (at >= 0) page = path.slice(at);
  else {
    const base = /^\{\{[^}]*runbook[^}]*\}\}\/?(.*)$/i.exec(path);
    if (base) page = `${RUNBOOKS_DIR}/${base[1]}`;
    else if (!/^[a-z][a-z0-9+.-]*:/i.test(path) && !path.startsWith('{{')) page = path.replace(/^\.\//, '');
  }
  return page === undefined || page.includes('{{') || page.endsWith('/') ? undefined : page;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);

/** A path as errors show it: relative to the working directory when inside it. */
function shown(file: string, cwd: string): string {
  const rel = relative(cwd, file);
  return rel.startsWith('..') ? file : rel;
}
