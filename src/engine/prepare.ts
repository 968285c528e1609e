/**
 * Turns loaded input (inventory + plays + limit + extra vars) into PreparedPlay[], validating
 * everything that can be validated without a network: host patterns, role variables for every
 * host, templated YAML task parameters. All errors are collected and thrown together.
 */
import type { Inventory } from '../inventory/types.js';
import type { Task, HostView } from '../modules/types.js';
import type { Facts } from '../facts/types.js';
import { UserError, UserErrors, didYouMean } from '../errors.js';
import type { BoundTask, HostPlay, PreparedPlay } from './types.js';
import { batchHosts } from './batches.js';
import { selectHosts } from '../inventory/limit.js';
import { mergeVars } from '../inventory/vars.js';
import { validateRoleVars, type RoleDef } from '../playbook/role.js';
import type { Play } from '../playbook/schema.js';
import { renderTaskParams, type RenderString } from '../playbook/params.js';
import type { RunInput } from './input.js';

export interface PrepareInput {
  inventory: Inventory;
  plays: Play[];
  limit?: string;
  extraVars: Record<string, unknown>;
  /** Directory of the playbook: templates/ and files/ of playbook tasks live there. */
  playbookDir: string;
  renderString: RenderString;
}

/** The plays of a loaded run input, for `limit`. */
export function preparePlaysOf(input: RunInput, limit?: string): PreparedPlay[] {
  return preparePlays({
    inventory: input.inventory,
    plays: input.plays,
    limit,
    extraVars: input.extraVars,
    playbookDir: input.playbookDir,
    renderString: input.renderer.renderString,
  });
}

export function preparePlays(input: PrepareInput): PreparedPlay[] {
  const { inventory } = input;
  const errors: UserError[] = [];
  const limited = input.limit ? new Set(selectHosts(inventory, input.limit)) : undefined;
  const prepared: PreparedPlay[] = [];

  input.plays.forEach((play, index) => {
    let hosts: string[] = [];
    try {
      hosts = selectHosts(inventory, play.hosts).filter((h) => !limited || limited.has(h));
    } catch (e) {
      // A bad `hosts:` pattern points at the playbook line that wrote it.
      const err = asUserError(e);
      errors.push(err.pos || !play.hostsPos ? err : new UserError(err.message, { pos: play.hostsPos, hint: err.hint, cause: e }));
      return;
    }
    const byHost = new Map<string, HostPlay>();
    for (const name of hosts) {
      try {
        byHost.set(name, prepareHost(input, play, name, errors));
      } catch (e) {
        errors.push(asUserError(e));
      }
    }
    prepared.push({
      index,
      name: play.name,
      hosts,
      batches: batchHosts(hosts, play.serial),
      maxFailPercentage: play.maxFailPercentage,
      anyErrorsFatal: play.anyErrorsFatal ?? false,
      byHost,
    });
  });

  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new UserErrors(dedupe(errors));
  return prepared;
}

function prepareHost(input: PrepareInput, play: Play, name: string, errors: UserError[]): HostPlay {
  const spec = input.inventory.hosts.get(name)!;
  const playVars = play.vars ?? {};
  const baseVars = mergeVars([spec.vars, playVars, input.extraVars]);
  const hostInfo = { name, address: spec.conn.address, groups: spec.groups };
  const withPlayTags = (t: Task): Task => (play.tags?.length ? { ...t, tags: [...t.tags, ...play.tags] } : t);

  // Roles: variables validated now, tasks built once facts are known.
  const roles: { role: RoleDef; vars: Record<string, unknown> }[] = [];
  for (const ref of play.roles) {
    const merged = mergeVars([spec.vars, playVars, ref.vars ?? {}, input.extraVars]);
    try {
      const vars = validateRoleVars(ref.role, merged, spec.provenance) as Record<string, unknown>;
      ref.role.validate?.({ vars, host: hostInfo, hosts: (p) => hostViews(input.inventory, p), inventory: input.inventory });
      roles.push({ role: ref.role, vars: { ...merged, ...vars } });
    } catch (e) {
      errors.push(asUserError(e, `host ${name}, role ${ref.role.name}`));
    }
  }

  // Playbook tasks and handlers: string params templated per host now, so bad input fails before connecting.
  const data = { vars: baseVars, host: hostInfo };
  const bindYamlTask = (task: Task): BoundTask => {
    const params = renderTaskParams(task, data, input.renderString);
    const parsed = task.module.params.safeParse(params);
    if (!parsed.success) {
      const o = task.origin;
      throw new UserError(
        `invalid parameters for ${task.module.name} on ${name}: ${parsed.error.issues
          .map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`)
          .join('; ')}`,
        { pos: o ? { file: o.file, line: o.line, col: o.col } : undefined, hint: 'see the module reference in README.md' },
      );
    }
    return { task: { ...task, params }, roleDir: input.playbookDir, vars: baseVars };
  };
  const yamlTasks: BoundTask[] = [];
  for (const task of play.tasks) {
    try {
      const bound = bindYamlTask(task);
      yamlTasks.push({ ...bound, task: withPlayTags(bound.task) });
    } catch (e) {
      errors.push(asUserError(e));
    }
  }

  const handlers = new Map<string, BoundTask>();
  for (const { role, vars } of roles) {
    for (const [hn, ht] of Object.entries(role.handlers ?? {})) {
      handlers.set(hn, { task: ht, roleDir: role.dir, roleName: role.name, vars });
    }
  }
  for (const [hn, ht] of Object.entries(play.handlers ?? {})) {
    try {
      handlers.set(hn, bindYamlTask(ht));
    } catch (e) {
      errors.push(asUserError(e));
    }
  }

  for (const bt of yamlTasks) {
    for (const n of bt.task.notify) {
      if (!handlers.has(n)) {
        const o = bt.task.origin;
        const guess = didYouMean(n, handlers.keys());
        errors.push(new UserError(`task notifies unknown handler "${n}"`, {
          pos: o ? { file: o.file, line: o.line, col: o.col } : undefined,
          hint: guess ? `did you mean "${guess}"?` : 'define it under the play\'s handlers:',
        }));
      }
    }
  }

  return {
    handlers,
    tasks(facts: Facts, hosts: (pattern: string) => HostView[]): BoundTask[] {
      const out: BoundTask[] = [];
      for (const { role, vars } of roles) {
        const tasks = role.tasks({ vars, host: { ...hostInfo, facts }, hosts, inventory: input.inventory });
        for (const t of tasks.filter(Boolean)) {
          out.push({ task: withPlayTags(t), roleDir: role.dir, roleName: role.name, vars });
        }
      }
      return out.concat(yamlTasks);
    },
  };
}

/** Other hosts as a role sees them before connecting (no facts yet). */
function hostViews(inventory: Inventory, pattern: string): HostView[] {
  return selectHosts(inventory, pattern).map((n) => {
    const h = inventory.hosts.get(n)!;
    return { name: n, address: h.conn.address, groups: h.groups, vars: h.vars };
  });
}

function asUserError(e: unknown, context?: string): UserError {
  if (e instanceof UserError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new UserError(context ? `${context}: ${msg}` : msg);
}

function dedupe(errors: UserError[]): UserError[] {
  const seen = new Set<string>();
  return errors.flatMap((e) => (e instanceof UserErrors ? e.errors : [e])).filter((e) => {
    const k = e.format();
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
