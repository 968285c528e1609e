/**
 * Loads and validates a playbook before anything connects: its shape, every role (imported),
 * every module name, and every task's params against its module's zod schema. Strings with
 * "{{" are templated per host later (params.ts), so checks that depend on them wait; a
 * template in a shell field that could not be quoted safely is refused here, at its line.
 * All errors are collected and thrown together.
 */
import { UserError, UserErrors, didYouMean } from '../errors.js';
import { makeTask, type Module, type Task, type TaskOptions } from '../modules/types.js';
import type { VaultDecryptor } from '../secrets/types.js';
import { loadYamlFile, formatPath, type YamlDoc, type YamlPath } from '../yaml/positions.js';
import { zodErrors } from '../yaml/zod-errors.js';
import { isPlainObject } from '../inventory/vars.js';
import { shellTemplateProblem } from '../render/template.js';
import { SHELL_PARAMS } from './params.js';
import { loadRole, type RoleDef } from './role.js';
import { playbookSchema, taskOptionsSchema, TASK_OPTION_KEYS, type Play, type Playbook, type RoleRef } from './schema.js';
import type { z } from 'zod';

export interface LoadPlaybookOptions {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  modules: Map<string, Module<any>>;
  rolesDirs: string[];
  decryptor?: VaultDecryptor;
  cwd?: string;
  /** Called with every play's `hosts:` once the playbook parsed, before its roles load. */
  onHostPatterns?(patterns: string[]): void;
}

export async function loadPlaybook(path: string, opts: LoadPlaybookOptions): Promise<Playbook> {
  const doc = await loadYamlFile(path, { cwd: opts.cwd, decryptor: opts.decryptor, vaultKeyPath: playbookKeyPath });
  if (doc.errors.length) throw collected(doc.errors);
  const parsed = playbookSchema.safeParse(doc.value);
  if (!parsed.success) throw collected(zodErrors(parsed.error, doc, playbookSchema));
  opts.onHostPatterns?.(parsed.data.map((p) => p.hosts));

  const errors: UserError[] = [];
  const roleCache = new Map<string, Promise<RoleDef>>();
  const plays: Play[] = [];
  for (const [i, raw] of parsed.data.entries()) {
    const roles: RoleRef[] = [];
    for (const [j, ref] of (raw.roles ?? []).entries()) {
      const name = typeof ref === 'string' ? ref : ref.role;
      const rolePath = typeof ref === 'string' ? [i, 'roles', j] : [i, 'roles', j, 'role'];
      const pos = doc.pos(rolePath);
      if (!roleCache.has(name)) roleCache.set(name, loadRole(name, opts.rolesDirs, pos));
      try {
        const role = await roleCache.get(name)!;
        roles.push({ role, vars: typeof ref === 'string' ? {} : (ref.vars ?? {}), pos });
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        // The cached failure carries the first reference's position: report each reference.
        errors.push(new UserError(e.message, { pos, hint: e.hint, cause: e.cause }));
      }
    }
    const tasks = (raw.tasks ?? []).map((t, j) => parseTask(t, [i, 'tasks', j], doc, opts.modules, errors));
    const handlers: Record<string, Task> = {};
    for (const [name, t] of Object.entries(raw.handlers ?? {})) {
      const task = parseTask(t, [i, 'handlers', name], doc, opts.modules, errors);
      if (task) handlers[name] = { ...task, name: task.name ?? name };
    }
    const vars = raw.vars ?? {};
    plays.push({
      name: raw.name ?? raw.hosts,
      hosts: raw.hosts,
      roles,
      tasks: tasks.filter((t): t is Task => t !== undefined),
      handlers,
      vars,
      serial: raw.serial === undefined ? undefined : Array.isArray(raw.serial) ? raw.serial : [raw.serial],
      maxFailPercentage: raw.maxFailPercentage,
      anyErrorsFatal: raw.anyErrorsFatal ?? false,
      tags: raw.tags ?? [],
      pos: doc.pos([i]),
      hostsPos: doc.pos([i, 'hosts']),
      varsPos: Object.fromEntries(Object.keys(vars).map((k) => [k, doc.keyPos([i, 'vars', k])])),
    });
  }
  if (errors.length) throw collected(errors);
  return { file: doc.file, plays };
}

/** Vault key paths in a playbook: relative to a play's `vars:` or a role reference's `vars:`. */
export function playbookKeyPath(path: YamlPath): string | undefined {
  if (path.length > 2 && path[1] === 'vars') return path.slice(2).join('.');
  if (path.length > 4 && path[1] === 'roles' && path[3] === 'vars') return path.slice(4).join('.');
  return undefined;
}

/** `- files.line: {path: ..., line: ...}` plus task options → Task (params kept raw). */
function parseTask(
  raw: Record<string, unknown>,
  path: YamlPath,
  doc: YamlDoc,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  modules: Map<string, Module<any>>,
  errors: UserError[],
): Task | undefined {
  const where = formatPath(path);
  const moduleKeys = Object.keys(raw).filter((k) => k.includes('.'));
  const optionInput: Record<string, unknown> = {};
  let bad = false;
  for (const k of Object.keys(raw)) {
    if (k.includes('.')) continue;
    if (TASK_OPTION_KEYS.includes(k)) {
      optionInput[k] = raw[k];
      continue;
    }
    const guess = didYouMean(k, [...TASK_OPTION_KEYS, ...modules.keys()]);
    errors.push(
      new UserError(`${where}: unknown key "${k}"${guess ? ` — did you mean "${guess}"?` : ''}`, {
        pos: doc.keyPos([...path, k]),
        hint: `a task is one module (e.g. files.line) plus any of: ${TASK_OPTION_KEYS.join(', ')}`,
      }),
    );
    bad = true;
  }
  if (moduleKeys.length !== 1) {
    errors.push(
      new UserError(moduleKeys.length ? `${where}: a task calls one module, found ${moduleKeys.join(', ')}` : `${where}: no module in this task`, {
        pos: doc.pos(path),
        hint: 'write one task per module call: `- files.line: {path: /etc/motd, line: "..."}`',
      }),
    );
    return undefined;
  }
  const modName = moduleKeys[0];
  const module = modules.get(modName);
  if (!module) {
    const guess = didYouMean(modName, modules.keys());
    errors.push(
      new UserError(`${where}: unknown module "${modName}"${guess ? ` — did you mean "${guess}"?` : ''}`, {
        pos: doc.keyPos([...path, modName]),
        hint: `modules: ${[...modules.keys()].sort().join(', ')}`,
      }),
    );
    return undefined;
  }
  const options = taskOptionsSchema.safeParse(optionInput);
  if (!options.success) {
    errors.push(...zodErrors(options.error, doc, taskOptionsSchema, path, raw));
    bad = true;
  }
  const rawParams = raw[modName] ?? {};
  const paramsPath = [...path, modName];
  if (!isPlainObject(rawParams)) {
    errors.push(new UserError(`${formatPath(paramsPath)}: module parameters must be a mapping`, { pos: doc.pos(paramsPath), hint: `e.g. ${modName}: {key: value}` }));
    return undefined;
  }
  for (const [k, v] of Object.entries(rawParams)) {
    const problem = SHELL_PARAMS.has(k) && typeof v === 'string' && v.includes('{{') ? shellTemplateProblem(v) : undefined;
    if (problem) {
      errors.push(new UserError(`${formatPath([...paramsPath, k])}: ${problem.message}`, { pos: doc.pos([...paramsPath, k]), hint: problem.hint }));
      bad = true;
    }
  }
  const checked = module.params.safeParse(rawParams);
  if (!checked.success) {
    const templated = templatedPaths(rawParams);
    const issues = checked.error.issues.filter((i) => !dependsOnTemplate(i, templated));
    if (issues.length) {
      errors.push(...zodErrors(new (checked.error.constructor as typeof z.ZodError)(issues), doc, module.params as z.ZodTypeAny, paramsPath, rawParams));
      bad = true;
    }
  }
  if (bad) return undefined;
  const task = makeTask(module, rawParams, options.success ? (options.data as TaskOptions) : {});
  const pos = doc.pos(path);
  task.origin = { file: pos.file, line: pos.line, col: pos.col };
  return task;
}

/** Paths of every string containing "{{" (its value is only known per host). */
function templatedPaths(v: unknown, path: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (typeof v === 'string') {
    if (v.includes('{{')) out.push(path);
  } else if (Array.isArray(v)) v.forEach((x, i) => templatedPaths(x, [...path, i], out));
  else if (isPlainObject(v)) for (const [k, x] of Object.entries(v)) templatedPaths(x, [...path, k], out);
  return out;
}

/** An issue about a templated value, its container, or inside it — except unknown or missing keys. */
function dependsOnTemplate(issue: z.ZodIssue, templated: (string | number)[][]): boolean {
  if (issue.code === 'unrecognized_keys') return false;
  if (issue.code === 'invalid_type' && issue.received === 'undefined') return false;
  const p = issue.path;
  return templated.some((t) => isPrefix(t, p) || isPrefix(p, t));
}

function isPrefix(a: ReadonlyArray<string | number>, b: ReadonlyArray<string | number>): boolean {
  return a.length <= b.length && a.every((x, i) => x === b[i]);
}

function collected(errors: UserError[]): UserError {
  return errors.length === 1 ? errors[0] : new UserErrors(errors);
}
