/**
 * Everything a run can validate before connecting, beyond loading (input.ts) and preparing
 * (prepare.ts): every role's task list built with placeholder facts, every task's and
 * handler's parameters checked, and every task's check() run offline up to its first remote
 * call, so each template a playbook or role uses is rendered with the data a run gives it.
 * A missing variable, a missing template or a path leaving its directory is an input error
 * (exit 2, file:line) here, not a failed task per host after connecting.
 * apply/plan/run call checkTasksOffline; `infra check` also compiles every template on disk.
 */
import { access, readdir, readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { loadRunInput, rolesDirs, type InputRequest, type RunInput } from './input.js';
import { preparePlaysOf } from './prepare.js';
import { defaultFacts } from '../facts/index.js';
import type { Facts } from '../facts/types.js';
import { selectHosts } from '../inventory/limit.js';
import type { HostContext, HostView } from '../modules/types.js';
import { resolveInside } from '../render/template.js';
import { UserError, UserErrors, type SourcePos } from '../errors.js';
import { describeParamsError, taskLabel } from './task-label.js';
import type { BoundTask, PreparedPlay } from './types.js';
import { templateData } from './host-context.js';
import { checkRunbookLinks } from '../docs/runbook-links.js';

export async function checkInput(req: InputRequest): Promise<string> {
  const input = await loadRunInput({ ...req, vaultOptional: true });
  const plays = preparePlaysOf(input, req.limit);
  const roles = new Map(input.plays.flatMap((p) => p.roles.map((r) => [r.role.name, r.role.dir] as const)));
  // Templates next to the playbook count too (not for `infra run ROLE`: its directory is the cwd).
  const dirs = [...roles.values(), ...(req.role ? [] : [input.playbookDir])];
  let templates = 0;
  for (const dir of dirs) {
    for (const f of await listTemplates(join(dir, 'templates'))) {
      input.renderer.compile(dir, f);
      templates++;
    }
  }
  await checkTasksOffline(input, plays);
  await checkRunbookLinks(rolesDirs(req.cwd), req.cwd);
  const hosts = new Set(plays.flatMap((p) => p.hosts));
  return `${input.inventory.hosts.size} hosts in ${input.inventory.env}, ${plays.length} plays over ${hosts.size} hosts, ${roles.size} roles, ${templates} templates`;
}

/**
 * Builds every host's tasks and handlers with placeholder facts and runs each check() with a
 * host that has no connection. Throws every input error found, each once (with the hosts it
 * concerns). Errors that depend on the real host are left to the run.
 */
export async function checkTasksOffline(input: RunInput, plays: PreparedPlay[]): Promise<void> {
  const found = new Map<string, { error: UserError; hosts: string[]; role?: string }>();
  const add = (host: string, e: UserError, role?: string) => {
    const key = `${e.pos ? JSON.stringify(e.pos) : ''}\0${e.message}`;
    const entry = found.get(key) ?? { error: e, hosts: [], role };
    if (!entry.hosts.includes(host)) entry.hosts.push(host);
    found.set(key, entry);
  };
  const factsOf = new Map<string, Facts>();
  const placeholder = (name: string) => {
    if (!factsOf.has(name)) factsOf.set(name, placeholderFacts(name, input.inventory.hosts.get(name)!.conn.address));
    return factsOf.get(name)!;
  };
  const hostsView = (pattern: string): HostView[] =>
    selectHosts(input.inventory, pattern).map((n) => {
      const h = input.inventory.hosts.get(n)!;
      return { name: n, address: h.conn.address, groups: h.groups, vars: h.vars, facts: placeholder(n) };
    });
  const groups = Object.fromEntries([...input.inventory.groups.keys()].map((g) => [g, hostsView(g)]));
  const parse = parseOnce();

  for (const play of plays) {
    for (const [host, hp] of play.byHost) {
      let tasks: BoundTask[];
      try {
        tasks = hp.tasks(placeholder(host), hostsView);
      } catch (e) {
        const err = e instanceof UserError ? e : new UserError((e as Error).message);
        add(host, new UserError(`play "${play.name}": ${err.message}`, { pos: err.pos, hint: err.hint }));
        continue;
      }
      for (const bt of [...tasks, ...hp.handlers.values()]) {
        const parsed = parse(bt);
        if (!parsed.success) {
          add(host, new UserError(describeParamsError(bt, parsed.error), { hint: bt.roleName ? `a bug in role ${bt.roleName}, or a variable it got` : undefined }), bt.roleName);
          continue;
        }
        try {
          await bt.task.module.check(offlineHost(input, bt, host, placeholder(host), hostsView, groups), parsed.data);
        } catch (e) {
          if (e instanceof UserError) add(host, await atTask(e, bt, taskLabel(bt, parsed.data)), bt.roleName);
          // Offline: check() reached the host. Other errors depend on the host: the run reports them.
        }
      }
    }
  }
  const errors = [...found.values()].map(({ error, hosts, role }) => {
    const shown = hosts.length > 3 ? `${hosts.slice(0, 3).join(', ')} and ${hosts.length - 3} more` : hosts.join(', ');
    const where = `${hosts.length === 1 ? 'host' : 'hosts'} ${shown}${role ? `, role ${role}` : ''}`;
    return new UserError(`${error.message} (${where})`, { pos: error.pos, hint: error.hint, cause: error });
  });
  if (errors.length) throw errors.length === 1 ? errors[0] : new UserErrors(errors);
}

/**
 * Parses a task's params, once per module and identical params: most of a role's tasks are the
 * same on every host (≈ 1,900 parses for 11 hosts in prod, far fewer distinct). Only params that
 * are plain JSON share a parse (a Secret, a Buffer or an undefined field is parsed on its own),
 * and the parsed data is only read by the offline checks.
 */
type Parsed = ReturnType<BoundTask['task']['module']['params']['safeParse']>;

function parseOnce(): (bt: BoundTask) => Parsed {
  const parsed = new Map<string, Parsed>();
  return (bt) => {
    const json = plainJson(bt.task.params);
    if (json === undefined) return bt.task.module.params.safeParse(bt.task.params);
    const key = `${bt.task.module.name}\0${json}`;
    let r = parsed.get(key);
    if (!r) parsed.set(key, (r = bt.task.module.params.safeParse(bt.task.params)));
    return r;
  };
}

/** JSON of a value made only of strings, finite numbers, booleans, null, arrays and plain objects; else undefined. */
function plainJson(v: unknown): string | undefined {
  const plain = (x: unknown): boolean => {
    if (x === null || typeof x === 'string' || typeof x === 'boolean') return true;
    if (typeof x === 'number') return Number.isFinite(x);
    if (Array.isArray(x)) return x.every(plain);
    if (typeof x !== 'object') return false;
    const proto = Object.getPrototypeOf(x);
    return (proto === Object.prototype || proto === null) && Object.getOwnPropertySymbols(x).length === 0 && Object.values(x as object).every(plain);
  };
  return plain(v) ? JSON.stringify(v) : undefined;
}

/** What check() gets instead of a connection: the first remote call ends it. */
class Offline extends Error {
  constructor() {
    super('offline: no connection while validating');
  }
}
/** One for every check: caught and dropped every time, and a stack per task and host costs more than the check. */
const OFFLINE = new Offline();

function offlineHost(input: RunInput, bt: BoundTask, name: string, facts: Facts, hosts: (pattern: string) => HostView[], groups: Record<string, HostView[]>): HostContext {
  const spec = input.inventory.hosts.get(name)!;
  const host = { name, address: spec.conn.address, groups: spec.groups };
  const offline = () => Promise.reject(OFFLINE);
  const dir = (what: string) => {
    if (!bt.roleDir) throw new UserError(`${what}: this task has no role or playbook directory`);
    return bt.roleDir;
  };
  return {
    ...host,
    vars: bt.vars,
    facts,
    checkMode: true,
    run: offline,
    put: offline,
    remove: offline,
    get: offline,
    render: (src, extra) => input.renderer.renderFile(dir(`template ${src}`), src, templateData(bt.vars, extra?.vars, host, facts, groups)),
    async roleFile(src) {
      const file = resolveInside(join(dir(`file ${src}`), 'files'), src);
      if (!(await access(file).then(() => true, () => false))) throw new UserError(`file not found: ${file}`);
      return readFile(file);
    },
    hosts,
    probeConnection: offline,
  };
}

/** An error without a position points at its task: the YAML line, or the line of role.ts naming it. */
async function atTask(e: UserError, bt: BoundTask, label: string): Promise<UserError> {
  if (e.pos) return e;
  let pos: SourcePos | undefined = bt.task.origin;
  if (!pos && bt.roleDir) pos = await lineNaming(join(bt.roleDir, 'role.ts'), bt.task.params);
  return new UserError(`${label}: ${e.message}`, { pos, hint: e.hint, cause: e });
}

/** The first line of a role file that spells one of the task's string parameters in quotes. */
async function lineNaming(file: string, params: unknown): Promise<SourcePos> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const values = Object.values(params && typeof params === 'object' ? params : {}).filter((v): v is string => typeof v === 'string');
  const lines = text.split('\n');
  for (const v of values) {
    const i = lines.findIndex((l) => [`'${v}'`, `"${v}"`, `\`${v}\``].some((q) => l.includes(q)));
    if (i >= 0) return { file, line: i + 1 };
  }
  return { file };
}

/** Facts of a typical target (Debian 12, not a container) for validating without a connection. */
function placeholderFacts(name: string, address: string): Facts {
  return {
    ...defaultFacts(),
    hostname: name,
    fqdn: name,
    os: { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)', family: 'debian' },
    kernel: '6.1.0',
    arch: 'x86_64',
    cpus: 2,
    memoryMb: 4096,
    container: 'none',
    ipv4: isIPv4(address) ? address : '192.0.2.1',
    iface: 'eth0',
    uid: 0,
    initSystem: 'systemd',
  };
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
