/**
 * Roles: `roles/<name>/role.ts` default-exports `defineRole({...})`. Loaded at run time with a
 * dynamic import (tsx is registered in the CLI process; vitest handles .ts itself), so users
 * keep roles in their own repositories with no build step.
 */
import { access, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { UserError, UserErrors, didYouMean, type SourcePos } from '../errors.js';
import { mergeVars } from '../inventory/vars.js';
import type { Facts } from '../facts/types.js';
import type { Inventory, VarSource } from '../inventory/types.js';
import type { HostView, Task } from '../modules/types.js';
import { formatPath } from '../yaml/positions.js';
import { describeValue, valueAt } from '../yaml/zod-errors.js';

export interface RoleContext<V> {
  /** Validated by the role's schema for this host. */
  vars: V;
  host: { name: string; address: string; groups: string[]; facts: Facts };
  /** Other hosts matching a limit pattern (cross-host data). */
  hosts(pattern: string): HostView[];
  inventory: Inventory;
}

/** What a role's validate() sees: no facts yet (nothing has connected). */
export type RoleInputContext<V> = Omit<RoleContext<V>, 'host'> & { host: Omit<RoleContext<V>['host'], 'facts'> };

export interface RoleSpec<V> {
  name: string;
  /** Role variables with their defaults (the lowest precedence level). */
  vars: z.ZodType<V, z.ZodTypeDef, unknown>;
  tasks(ctx: RoleContext<V>): Task[];
  handlers?: Record<string, Task>;
  /**
   * Input checks that need the inventory (a replica group with no primary), run for every
   * host of the play before anything connects. Throws a UserError (file:line, hint).
   */
  validate?(ctx: RoleInputContext<V>): void;
}

/** Marks a defineRole() result (a symbol from the registry: survives duplicate module copies). */
const ROLE = Symbol.for('infra.role');

export type Role<V> = RoleSpec<V> & { readonly [ROLE]: true };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface RoleDef<V = any> extends RoleSpec<V> {
  /** Absolute directory of the role (templates/, files/). */
  dir: string;
  /** Absolute path of role.ts. */
  file: string;
}

/** A role without `vars` takes none (an empty object schema). */
export function defineRole<S extends z.ZodTypeAny = z.ZodObject<Record<string, never>>>(spec: {
  name: string;
  vars?: S;
  tasks: (ctx: RoleContext<z.output<S>>) => Task[];
  handlers?: Record<string, Task>;
  validate?: (ctx: RoleInputContext<z.output<S>>) => void;
}): Role<z.output<S>> {
  return Object.freeze({ ...spec, vars: spec.vars ?? z.object({}), [ROLE]: true as const }) as Role<z.output<S>>;
}

export function isRole(v: unknown): v is Role<unknown> {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[ROLE] === true;
}

export const ROLE_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/;

/** Finds `<dir>/<name>/role.ts` in the first roles directory that has it, and imports it. */
export async function loadRole(name: string, rolesDirs: readonly string[], pos?: SourcePos): Promise<RoleDef> {
  if (!ROLE_NAME_RE.test(name)) {
    throw new UserError(`invalid role name "${name}"`, { pos, hint: 'role names use letters, digits, "_" and "-" (a directory under roles/)' });
  }
  for (const d of rolesDirs) {
    const dir = resolve(d, name);
    const file = join(dir, 'role.ts');
    if (!(await exists(file))) continue;
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
    } catch (e) {
      throw new UserError(`cannot load role "${name}" (${file}): ${(e as Error).message?.split('\n')[0] ?? e}`, {
        pos: { file },
        hint: 'fix the error in role.ts (try: npx tsc --noEmit)',
        cause: e,
      });
    }
    if (!isRole(mod.default)) {
      throw new UserError(`${file} does not default-export a role`, { pos: { file }, hint: 'end it with: export default defineRole({ name, vars, tasks })' });
    }
    const role = mod.default as Role<unknown>;
    if (role.name !== name) {
      throw new UserError(`role in ${name}/role.ts is named "${role.name}"`, { pos: { file }, hint: `a role's name must match its directory: name: '${name}'` });
    }
    return { ...role, dir, file };
  }
  const available = (await Promise.all(rolesDirs.map((d) => listRoles(d)))).flat();
  const guess = didYouMean(name, available);
  throw new UserError(`unknown role "${name}"${guess ? ` — did you mean "${guess}"?` : ''}`, {
    pos,
    hint: available.length ? `roles: ${[...new Set(available)].sort().join(', ')}` : `no roles found in ${rolesDirs.join(', ')}`,
  });
}

async function listRoles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) if (e.isDirectory() && (await exists(join(dir, e.name, 'role.ts')))) out.push(e.name);
  return out;
}

const exists = (p: string) => access(p).then(() => true, () => false);

/**
 * Validates a host's merged vars against the role's schema (unknown vars pass: they belong to
 * other roles). Each error points at where the offending variable was set (provenance), or at
 * the role file when the value is the role's own default or missing.
 */
export function validateRoleVars<V>(role: RoleDef<V>, hostVars: Record<string, unknown>, provenance: Map<string, VarSource[]>): V {
  const parsed = role.vars.safeParse(hostVars);
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.map((issue) => {
    const top = String(issue.path[0] ?? '');
    const sources = provenance.get(top);
    const last = sources?.[sources.length - 1];
    const fromInventory = last && top in hostVars && sameValue(inventoryValue(sources!, top), hostVars[top]);
    const value = valueAt(hostVars, issue.path);
    const where = issue.path.length ? formatPath(issue.path) : '(vars)';
    const what =
      issue.code === 'invalid_type' && issue.received === 'undefined'
        ? `required variable ${where} is not set`
        : `variable ${where}: ${issue.code === 'invalid_type' ? `expected ${issue.expected}` : issue.message}, got ${describeValue(value)}`;
    const origin = fromInventory ? '' : top in hostVars ? ' (set by play vars or -e)' : '';
    return new UserError(`role ${role.name}: ${what}${origin}`, {
      pos: fromInventory ? last.pos : { file: role.file },
      hint: fromInventory
        ? `set at the ${last.level}${last.scope ? ` ${last.scope}` : ''} level; the role expects what ${role.name}/role.ts declares`
        : top in hostVars
          ? `fix the value given in the playbook (play or role vars) or with -e`
          : `set ${top || 'it'} in group_vars/ or host_vars/, or give the role's schema a default`,
    });
  });
  if (errors.length === 1) throw errors[0];
  throw new UserErrors(errors);
}

/** The inventory's merged value of a top-level var, to tell it from a play or -e override. */
function inventoryValue(sources: VarSource[], name: string): unknown {
  return mergeVars(sources.map((s) => ({ [name]: s.value })))[name];
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}
