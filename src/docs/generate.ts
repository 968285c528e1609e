/**
 * `infra docs`: the documents of an environment (docs/<env>/) and the roles' variables
 * reference (docs/roles/), generated from the inventory, the playbook and the roles. Output is
 * deterministic: no timestamps, everything in inventory or sorted order, so re-running without
 * a change rewrites identical bytes and a stale committed page shows up as a diff.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { AdhocRequest } from '../engine/adhoc.js';
import { rolesDirs } from '../engine/input.js';
import { networkGraph, toDot, toMermaid } from './diagram.js';
import { renderSvg } from './graphviz.js';
import { hostReports } from './host-facts.js';
import { inventoryPage } from './inventory-page.js';
import { generatedBy } from './markdown.js';
import { firewallPage } from './matrix.js';
import { listRoles, rolePages } from './role-reference.js';
import { loadSite } from './site.js';

export interface EnvDocsRequest {
  cwd: string;
  inventory: string;
  /** Default docs/<inventory directory name>. */
  out?: string;
  playbook?: string;
  /** Connect (read-only) for OS, kernel and package versions: the connection settings of `infra facts`. */
  facts?: Omit<AdhocRequest, 'cwd' | 'inventory'>;
}

export interface Written {
  dir: string;
  files: string[];
}

export async function writeEnvDocs(req: EnvDocsRequest): Promise<Written> {
  const site = await loadSite(req);
  const command = `infra docs -i ${site.env}`;
  const reports = req.facts ? await hostReports({ ...req.facts, cwd: req.cwd, inventory: req.inventory }) : undefined;
  const graph = networkGraph(site);
  const dot = toDot(graph, `${site.env}: hosts, VIP, bastion path and allowed flows`);
  const files = new Map<string, string>([
    ['README.md', indexPage(site.env, command)],
    ['network.dot', `${generatedBy(command, (s) => `// ${s}`)}\n${dot}`],
    ['network.mmd', `${generatedBy(command, (s) => `%% ${s}`)}\n${toMermaid(graph)}`],
    ['network.svg', withComment(await renderSvg(dot), generatedBy(command))],
    ['firewall.md', firewallPage(site, command)],
    ['inventory.md', inventoryPage(site, command, req.cwd, reports)],
  ]);
  const dir = resolve(req.cwd, req.out ?? join('docs', basename(site.inventory.dir)));
  return { dir, files: await writeAll(dir, files) };
}

export async function writeRoleDocs(req: { cwd: string; out?: string }): Promise<Written> {
  const pages = await rolePages(await listRoles(rolesDirs(req.cwd)), req.cwd);
  const dir = resolve(req.cwd, req.out ?? join('docs', 'roles'));
  return { dir, files: await writeAll(dir, pages) };
}

function indexPage(env: string, command: string): string {
  return [
    generatedBy(command),
    '',
    `# Environment \`${env}\``,
    '',
    'Generated from the inventory, the playbook and the roles: re-run the command above after changing any of them (a unit test fails while these files are stale).',
    '',
    '- [inventory](inventory.md): hosts, groups, addresses, the roles each host gets',
    '- [firewall](firewall.md): who may reach what (from × to × port), and each host\'s rules',
    '- network diagram: [SVG](network.svg), sources in [DOT](network.dot) and [Mermaid](network.mmd)',
    '- [roles: variables reference](../roles/README.md)',
    '',
    '![network diagram](network.svg)',
    '',
  ].join('\n');
}

/** The generated-by line after the XML declaration (an XML comment may not precede it). */
function withComment(svg: string, comment: string): string {
  const decl = /^<\?xml[^>]*\?>\n/.exec(svg);
  return decl ? `${decl[0]}${comment}\n${svg.slice(decl[0].length)}` : `${comment}\n${svg}`;
}

async function writeAll(dir: string, files: Map<string, string>): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const names = [...files.keys()].sort();
  for (const name of names) await writeFile(join(dir, name), files.get(name)!);
  return names;
}
