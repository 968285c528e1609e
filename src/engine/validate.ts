/** `infra check`: everything a run validates before connecting, plus every role template compiled. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadRunInput, type InputRequest } from './input.js';
import { preparePlaysOf } from './prepare.js';

export async function checkInput(req: InputRequest): Promise<string> {
  const input = await loadRunInput(req);
  const plays = preparePlaysOf(input, req.limit);
  const roles = new Map(input.plays.flatMap((p) => p.roles.map((r) => [r.role.name, r.role.dir] as const)));
  let templates = 0;
  for (const dir of roles.values()) {
    for (const f of await listTemplates(join(dir, 'templates'))) {
      input.renderer.compile(dir, f);
      templates++;
    }
  }
  const hosts = new Set(plays.flatMap((p) => p.hosts));
  return `${input.inventory.hosts.size} hosts in ${input.inventory.env}, ${plays.length} plays over ${hosts.size} hosts, ${roles.size} roles, ${templates} templates`;
}

async function listTemplates(dir: string, prefix = ''): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.isDirectory()) out.push(...(await listTemplates(join(dir, e.name), `${prefix}${e.name}/`)));
    else if (e.name.endsWith('.hbs')) out.push(`${prefix}${e.name}`);
  }
  return out;
}
