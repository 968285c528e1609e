/**
 * Variable precedence, lowest first (README "Variables"):
 *   role defaults < group vars < host vars < play vars < extra vars (-e)
 * Group vars: `all` first, then groups by depth in the group tree (parent before child);
 * groups at the same depth in alphabetical order. Within a group, inline `vars:` of
 * hosts.yaml come before group_vars/<group>.yaml; the same for a host and host_vars/.
 *
 * Merge: mappings merge key by key (deeply); lists and scalars replace; null is a value and
 * replaces too. Secrets are values, never merged into.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYamlValue } from 'yaml';
import { UserError, didYouMean, type SourcePos } from '../errors.js';
import type { VaultDecryptor } from '../secrets/types.js';
import type { Inventory, VarSource } from './types.js';
import { parseYaml, displayPath, forbiddenKey } from '../yaml/positions.js';

export type Vars = Record<string, unknown>;

export function isPlainObject(v: unknown): v is Vars {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Merges levels, lowest precedence first. Inputs are never modified. */
export function mergeVars(levels: ReadonlyArray<Vars | undefined>): Vars {
  let out: Vars = {};
  for (const level of levels) if (level) out = mergeInto(out, level);
  return out;
}

function mergeInto(base: Vars, top: Vars): Vars {
  const out: Vars = { ...base };
  for (const [k, v] of Object.entries(top)) {
    const prev = out[k];
    out[k] = isPlainObject(prev) && isPlainObject(v) ? mergeInto(prev, v) : isPlainObject(v) ? mergeInto({}, v) : v;
  }
  return out;
}

/** Variables from one source, and where each top-level key was written. */
export interface VarsLayer {
  vars: Vars;
  posOf(key: string): SourcePos | undefined;
}

export interface ExplainExtra {
  roleDefaults?: Vars;
  /** The plays that run on the host, in playbook order: each is its own play level. */
  plays?: Array<VarsLayer & { name: string }>;
  /** One layer per -e argument, in command-line order. */
  extra?: VarsLayer[];
}

/**
 * Every level's contribution to `name` on `host`, lowest precedence first. Plays do not stack:
 * each play's vars apply to that play's tasks only (formatExplain shows one result per play).
 */
export function explainVar(inv: Inventory, host: string, name: string, extra: ExplainExtra = {}): VarSource[] {
  const spec = inv.hosts.get(host);
  if (!spec) {
    const guess = didYouMean(host, inv.hosts.keys());
    throw new UserError(`unknown host "${host}"`, { hint: guess ? `did you mean "${guess}"?` : `hosts: ${[...inv.hosts.keys()].join(', ')}` });
  }
  const out: VarSource[] = [];
  if (extra.roleDefaults && name in extra.roleDefaults) out.push({ level: 'role default', value: extra.roleDefaults[name] });
  out.push(...(spec.provenance.get(name) ?? []));
  for (const p of extra.plays ?? []) if (name in p.vars) out.push({ level: 'play', scope: p.name, value: p.vars[name], pos: p.posOf(name) });
  for (const e of extra.extra ?? []) if (name in e.vars) out.push({ level: 'extra', value: e.vars[name], pos: e.posOf(name) });
  return out;
}

/**
 * `-e` arguments, later ones winning: `key=value` (value read as a YAML scalar: 5 is a
 * number, true a boolean, "5" a string; `a.b=1` sets a nested key), a JSON/YAML flow
 * mapping `{"a": 1}`, or `@file.yaml` (relative to cwd).
 */
export function parseExtraVars(args: ReadonlyArray<string>, cwd: string, opts: { decryptor?: VaultDecryptor } = {}): Vars {
  return mergeVars(extraVarsLayers(args, cwd, opts).map((l) => l.vars));
}

/** Each -e argument's variables with where they were written: the file's line, or the command line. */
export function extraVarsLayers(args: ReadonlyArray<string>, cwd: string, opts: { decryptor?: VaultDecryptor } = {}): VarsLayer[] {
  return args.map((arg) => parseOne(arg, cwd, opts.decryptor));
}

const HINT = 'use -e key=value, -e \'{"key": "value"}\' or -e @file.yaml';
const COMMAND_LINE: SourcePos = { file: '-e (command line)' };

function parseOne(arg: string, cwd: string, decryptor?: VaultDecryptor): VarsLayer {
  const onCommandLine = (vars: Vars): VarsLayer => ({ vars, posOf: () => COMMAND_LINE });
  const origin = { file: `-e ${arg.length > 40 ? `${arg.slice(0, 37)}...` : arg}` };
  if (arg.startsWith('@')) {
    const path = resolve(cwd, arg.slice(1));
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new UserError(`cannot read extra vars file ${arg.slice(1)}: ${(e as NodeJS.ErrnoException).code ?? e}`, { pos: origin, hint: HINT });
    }
    const doc = parseYaml(text, displayPath(path, cwd), { decryptor });
    if (doc.errors.length) throw doc.errors[0];
    if (doc.value === null) return { vars: {}, posOf: () => undefined };
    if (!isPlainObject(doc.value)) throw new UserError('extra vars file must be a mapping of variables', { pos: doc.pos([]), hint: HINT });
    return { vars: doc.value, posOf: (k) => doc.keyPos([k]) };
  }
  if (arg.trimStart().startsWith('{')) {
    const doc = parseYaml(arg, origin.file);
    if (doc.errors.length || !isPlainObject(doc.value)) {
      throw new UserError(`invalid extra vars mapping: ${doc.errors[0]?.message ?? 'not a mapping'}`, { pos: origin, hint: HINT });
    }
    return onCommandLine(doc.value);
  }
  const eq = arg.indexOf('=');
  const key = arg.slice(0, eq);
  if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(key)) {
    throw new UserError(`invalid extra var "${arg}"`, { pos: origin, hint: HINT });
  }
  for (const k of key.split('.')) {
    const forbidden = forbiddenKey(k, origin);
    if (forbidden) throw forbidden;
  }
  const value = scalar(arg.slice(eq + 1));
  return onCommandLine(
    key
      .split('.')
      .reverse()
      .reduce<unknown>((v, k) => ({ [k]: v }), value) as Vars,
  );
}

/** A YAML scalar (number, boolean, null, string); anything else stays the literal text. */
function scalar(text: string): unknown {
  if (text === '') return '';
  try {
    const v = parseYamlValue(text);
    return v !== null && typeof v === 'object' ? text : v;
  } catch {
    return text;
  }
}
