/** `infra check`: everything a run validates before connecting, plus every role template compiled. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadRunInput, type InputRequest } from './input.js';
import { preparePlaysOf } from './prepare.js';
import { defaultFacts } from '../facts/index.js';
import { selectHosts } from '../inventory/limit.js';
import { UserError, UserErrors } from '../errors.js';
import { describeParamsError } from './task-label.js';

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
  // Role tasks need facts; with placeholder facts (Debian 12, not a container, a default route on eth0) every role's
  // task list is built and each task's parameters validated, so a role bug or a bad
  // cross-host reference (an unknown group in firewall.allow) shows here, not mid-run.
  const facts = { ...defaultFacts(), os: { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)', family: 'debian' as const }, container: 'none', iface: 'eth0', ipv4: '192.0.2.1' };
  const hostsView = (pattern: string) =>
    selectHosts(input.inventory, pattern).map((n) => {
      const h = input.inventory.hosts.get(n)!;
      return { name: n, address: h.conn.address, groups: h.groups, vars: h.vars, facts };
    });
  const errors: UserError[] = [];
  for (const play of plays) {
    for (const [host, hp] of play.byHost) {
      try {
        for (const bt of hp.tasks(facts, hostsView)) {
          const parsed = bt.task.module.params.safeParse(bt.task.params);
          if (!parsed.success) errors.push(new UserError(`${host}: ${describeParamsError(bt, parsed.error)}`, { hint: bt.roleName ? `a bug in role ${bt.roleName}, or a variable it got` : undefined }));
        }
      } catch (e) {
        const err = e instanceof UserError ? e : new UserError((e as Error).message);
        if (!errors.some((x) => x.message.endsWith(err.message))) {
          errors.push(new UserError(`${host}, play "${play.name}": ${err.message}`, { pos: err.pos, hint: err.hint }));
        }
      }
    }
  }
  if (errors.length) throw errors.length === 1 ? errors[0] : new UserErrors(errors);
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
