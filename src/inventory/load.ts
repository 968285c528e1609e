/**
 * Loads inventories/<env>/: hosts.yaml, group_vars/<group>.yaml, host_vars/<host>.yaml.
 * Every problem in every file is collected and thrown together as UserErrors, each with
 * file:line:col, so one run of `infra check` shows them all. Nothing here touches a network.
 */
import { readdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { z } from 'zod';
import { UserError, UserErrors, didYouMean, type SourcePos } from '../errors.js';
import type { VaultDecryptor } from '../secrets/types.js';
import type { ConnectionSettings, GroupSpec, HostSpec, Inventory, VarSource } from './types.js';
import { CONNECTION_KEYS, NAME_RE, hostsFileShapeSchema, hostSchema, groupSchema, varsSchema, type ConnectionKeys, type RawGroup, type RawHost } from './schema.js';
import { mergeVars, isPlainObject, type Vars } from './vars.js';
import { loadYamlFile, type YamlDoc, type YamlPath } from '../yaml/positions.js';
import { zodErrors } from '../yaml/zod-errors.js';

export interface LoadInventoryOptions {
  cwd?: string;
  decryptor?: VaultDecryptor;
}

/** One layer of vars with where each top-level key was written. */
interface VarLayer {
  level: 'group' | 'host';
  scope?: string;
  vars: Vars;
  posOf(key: string): SourcePos;
}

export async function loadInventory(envOrPath: string, opts: LoadInventoryOptions = {}): Promise<Inventory> {
  const cwd = opts.cwd ?? process.cwd();
  const { dir, env } = await locate(envOrPath, cwd);
  const errors: UserError[] = [];
  const yamlOpts = { cwd, decryptor: opts.decryptor };

  const hostsPath = (await firstExisting([join(dir, 'hosts.yaml'), join(dir, 'hosts.yml')])) ?? join(dir, 'hosts.yaml');
  const doc = await loadYamlFile(hostsPath, { ...yamlOpts, vaultKeyPath: hostsFileKeyPath });
  errors.push(...doc.errors);
  let rawHosts: Record<string, RawHost> = {};
  let rawGroups: Record<string, RawGroup> = {};
  const invalidHosts = new Set<string>();
  if (!doc.errors.length) {
    // Each host and group on its own: one bad entry must not hide the other entries' errors.
    const top = hostsFileShapeSchema.safeParse(doc.value ?? {});
    if (!top.success) errors.push(...zodErrors(top.error, doc, hostsFileShapeSchema));
    else {
      rawHosts = parseEntries(top.data.hosts, 'hosts', hostSchema, doc, errors, invalidHosts);
      rawGroups = parseEntries(top.data.groups ?? {}, 'groups', groupSchema, doc, errors);
    }
  }

  const groupNames = new Set(['all', ...Object.keys(rawGroups)]);
  const hostNames = Object.keys(rawHosts);
  const unknown = (kind: 'group' | 'host', name: string, path: YamlPath, known: Iterable<string>) => {
    const guess = didYouMean(name, known);
    errors.push(
      new UserError(`${kind === 'group' ? 'unknown group' : 'unknown host'} "${name}"${guess ? ` — did you mean "${guess}"?` : ''}`, {
        pos: doc.pos(path),
        hint: kind === 'group' ? 'declare it under groups: in hosts.yaml' : 'declare it under hosts: in hosts.yaml',
      }),
    );
  };

  // Group tree: references, cycles, depth.
  const parents = new Map<string, string[]>([...groupNames].map((g) => [g, []]));
  for (const [g, spec] of Object.entries(rawGroups)) {
    (spec.children ?? []).forEach((c, i) => {
      if (c === 'all') errors.push(new UserError(`groups.${g}.children: "all" cannot be a child group`, { pos: doc.pos(['groups', g, 'children', i]) }));
      else if (!groupNames.has(c)) unknown('group', c, ['groups', g, 'children', i], groupNames);
      else parents.get(c)!.push(g);
    });
    (spec.hosts ?? []).forEach((h, i) => {
      if (!(h in rawHosts)) unknown('host', h, ['groups', g, 'hosts', i], hostNames);
    });
  }
  const cycle = findCycle(rawGroups, groupNames);
  if (cycle) {
    errors.push(
      new UserError(`groups form a cycle: ${cycle.join(' → ')}`, {
        pos: doc.pos(['groups', cycle[0], 'children']),
        hint: 'a group cannot be its own ancestor; remove one of these children',
      }),
    );
  }
  const depth = cycle ? new Map<string, number>() : groupDepths(groupNames, parents);

  // Host membership: direct groups, groups listing the host, and their ancestors.
  const hostGroups = new Map<string, string[]>();
  for (const [h, spec] of Object.entries(rawHosts)) {
    const direct = new Set<string>();
    (spec.groups ?? []).forEach((g, i) => (groupNames.has(g) ? direct.add(g) : unknown('group', g, ['hosts', h, 'groups', i], groupNames)));
    for (const [g, gs] of Object.entries(rawGroups)) if (gs.hosts?.includes(h)) direct.add(g);
    const all = new Set<string>(['all']);
    const visit = (g: string) => {
      if (all.has(g) && g !== 'all') return;
      all.add(g);
      for (const p of parents.get(g) ?? []) visit(p);
    };
    direct.forEach(visit);
    hostGroups.set(h, orderGroups([...all], depth));
  }

  // group_vars/ and host_vars/.
  const groupFiles = await loadVarsDir(join(dir, 'group_vars'), 'group', groupNames, yamlOpts, errors);
  const hostFiles = await loadVarsDir(join(dir, 'host_vars'), 'host', new Set(hostNames), yamlOpts, errors);

  const groupLayers = new Map<string, VarLayer[]>();
  for (const g of groupNames) {
    const layers: VarLayer[] = [];
    const inline = rawGroups[g]?.vars;
    if (inline) layers.push(inlineLayer('group', g, inline, doc, ['groups', g, 'vars']));
    const file = groupFiles.get(g);
    if (file) layers.push(fileLayer('group', g, file));
    groupLayers.set(g, layers);
  }

  const groups = new Map<string, GroupSpec>();
  for (const g of groupNames) {
    groups.set(g, {
      name: g,
      children: rawGroups[g]?.children ?? [],
      hosts: rawGroups[g]?.hosts ?? [],
      vars: mergeVars(groupLayers.get(g)!.map((l) => l.vars)),
      pos: g in rawGroups ? doc.keyPos(['groups', g]) : undefined,
    });
  }

  const hosts = new Map<string, HostSpec>();
  for (const [h, spec] of Object.entries(rawHosts)) {
    const memberOf = hostGroups.get(h)!;
    const layers: VarLayer[] = memberOf.flatMap((g) => groupLayers.get(g) ?? []);
    if (spec.vars) layers.push(inlineLayer('host', undefined, spec.vars, doc, ['hosts', h, 'vars']));
    const file = hostFiles.get(h);
    if (file) layers.push(fileLayer('host', undefined, file));
    // An invalid host already has its errors: resolving it would only add noise.
    const conn = resolveConnection(h, spec, memberOf.map((g) => rawGroups[g] ?? {}), dir, doc, invalidHosts.has(h) ? [] : errors);
    hosts.set(h, {
      name: h,
      conn,
      groups: memberOf,
      vars: mergeVars(layers.map((l) => l.vars)),
      provenance: provenanceOf(layers),
      pos: doc.keyPos(['hosts', h]),
    });
  }
  if (!errors.length) checkBastions(hosts, rawHosts, rawGroups, doc, errors);

  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new UserErrors(errors.sort(byPosition));
  return { env, dir, hosts, groups, knownHostsPath: join(dir, 'known_hosts'), vault: opts.decryptor };
}

/** `lab` → <cwd>/inventories/lab; anything path-like → that directory (or hosts.yaml's). */
async function locate(envOrPath: string, cwd: string): Promise<{ dir: string; env: string }> {
  const isName = /^[A-Za-z0-9_-]+$/.test(envOrPath);
  let dir = isName ? join(cwd, 'inventories', envOrPath) : resolve(cwd, envOrPath);
  const st = await stat(dir).catch(() => undefined);
  if (st?.isFile()) dir = dirname(dir);
  else if (!st?.isDirectory()) {
    const known = await readdir(join(cwd, 'inventories')).catch(() => [] as string[]);
    const guess = isName ? didYouMean(envOrPath, known) : undefined;
    throw new UserError(`no inventory "${envOrPath}" (looked for ${dir})`, {
      hint: guess ? `did you mean "${guess}"?` : known.length ? `inventories here: ${known.join(', ')}` : 'pass -i ENV (inventories/ENV) or -i PATH',
    });
  }
  return { dir, env: envOrPath };
}

/** Vault key paths in hosts.yaml: relative to each `vars:` mapping, or the connection key's name. */
export function hostsFileKeyPath(path: YamlPath): string | undefined {
  if ((path[0] === 'hosts' || path[0] === 'groups') && path.length >= 3) {
    if (path[2] === 'vars' && path.length > 3) return path.slice(3).join('.');
    if (path.length === 3 && (path[2] === 'keyPassphrase' || path[2] === 'becomePassword')) return path[2];
  }
  return undefined;
}

async function loadVarsDir(
  dir: string,
  kind: 'group' | 'host',
  known: Set<string>,
  yamlOpts: { cwd: string; decryptor?: VaultDecryptor },
  errors: UserError[],
): Promise<Map<string, YamlDoc>> {
  const out = new Map<string, YamlDoc>();
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const ext = extname(e.name);
    if (!e.isFile() || (ext !== '.yaml' && ext !== '.yml')) continue;
    const name = basename(e.name, ext);
    const path = join(dir, e.name);
    const doc = await loadYamlFile(path, yamlOpts);
    if (!known.has(name)) {
      const guess = didYouMean(name, known);
      errors.push(
        new UserError(`vars for unknown ${kind} "${name}"${guess ? ` — did you mean "${guess}"?` : ''}`, {
          pos: { file: doc.file },
          hint: `the file name must be a ${kind} of hosts.yaml (${[...known].join(', ')})`,
        }),
      );
      continue;
    }
    if (out.has(name)) {
      errors.push(new UserError(`two vars files for ${kind} "${name}"`, { pos: { file: doc.file }, hint: 'keep one of <name>.yaml and <name>.yml' }));
      continue;
    }
    errors.push(...doc.errors);
    if (doc.errors.length) continue;
    if (doc.value === null || doc.value === undefined) doc.value = {};
    const parsed = varsSchema.safeParse(doc.value);
    if (!parsed.success || !isPlainObject(doc.value)) {
      errors.push(new UserError(`expected a mapping of variables`, { pos: doc.pos([]), hint: 'write `name: value` lines at the top level' }));
      continue;
    }
    out.set(name, doc);
  }
  return out;
}

function inlineLayer(level: 'group' | 'host', scope: string | undefined, vars: Vars, doc: YamlDoc, base: YamlPath): VarLayer {
  return { level, scope, vars, posOf: (k) => doc.keyPos([...base, k]) };
}

function fileLayer(level: 'group' | 'host', scope: string | undefined, doc: YamlDoc): VarLayer {
  return { level, scope, vars: doc.value as Vars, posOf: (k) => doc.keyPos([k]) };
}

function provenanceOf(layers: VarLayer[]): Map<string, VarSource[]> {
  const out = new Map<string, VarSource[]>();
  for (const l of layers) {
    for (const [k, value] of Object.entries(l.vars)) {
      const list = out.get(k) ?? [];
      list.push({ level: l.level, ...(l.scope ? { scope: l.scope } : {}), value, pos: l.posOf(k) });
      out.set(k, list);
    }
  }
  return out;
}

/** host > most specific group > ... > all; then defaults. */
function resolveConnection(
  name: string,
  host: RawHost,
  groupsInOrder: RawGroup[],
  dir: string,
  doc: YamlDoc,
  errors: UserError[],
): ConnectionSettings {
  const merged: ConnectionKeys = {};
  for (const layer of [...groupsInOrder, host]) {
    for (const k of CONNECTION_KEYS) {
      if (Object.prototype.hasOwnProperty.call(layer, k) && layer[k] !== undefined) (merged as Record<string, unknown>)[k] = layer[k];
    }
  }
  const connection = merged.connection ?? 'ssh';
  let address = host.address;
  if (!address) {
    if (connection === 'local') address = 'localhost';
    else errors.push(new UserError(`hosts.${name}: missing required key "address"`, { pos: doc.keyPos(['hosts', name]), hint: 'add address: <ip or dns name>' }));
  }
  const conn: ConnectionSettings = {
    connection,
    address: address ?? '',
    port: merged.port ?? 22,
    user: merged.user ?? 'root',
    become: merged.become ?? false,
  };
  if (merged.key) conn.key = merged.key.startsWith('~/') ? join(homedir(), merged.key.slice(2)) : resolve(dir, merged.key);
  if (merged.keyPassphrase) conn.keyPassphrase = merged.keyPassphrase;
  if (merged.becomePassword) conn.becomePassword = merged.becomePassword;
  if (merged.bastion) conn.bastion = merged.bastion;
  if (merged.keepaliveInterval !== undefined) conn.keepaliveIntervalMs = Math.round(merged.keepaliveInterval * 1000);
  if (merged.keepaliveCount !== undefined) conn.keepaliveCountMax = merged.keepaliveCount;
  return conn;
}

/** A bastion names an existing host (not the host itself, no loops) or looks like an address. */
function checkBastions(
  hosts: Map<string, HostSpec>,
  rawHosts: Record<string, RawHost>,
  rawGroups: Record<string, RawGroup>,
  doc: YamlDoc,
  errors: UserError[],
): void {
  // Where the effective bastion was set: the host, else its most specific group setting one.
  const whereSet = (h: string): SourcePos => {
    if (rawHosts[h] && 'bastion' in rawHosts[h]) return doc.pos(['hosts', h, 'bastion']);
    const g = [...hosts.get(h)!.groups].reverse().find((x) => rawGroups[x] && 'bastion' in rawGroups[x]);
    return g ? doc.pos(['groups', g, 'bastion']) : doc.keyPos(['hosts', h]);
  };
  for (const [h, spec] of hosts) {
    const b = spec.conn.bastion;
    if (!b) continue;
    if (b === h) {
      errors.push(
        new UserError(`host "${h}" is its own bastion`, {
          pos: whereSet(h),
          hint: `set \`bastion: null\` on host ${h} (it is reached directly)`,
        }),
      );
      continue;
    }
    if (hosts.has(b)) {
      const seen = new Set([h]);
      for (let cur: string | undefined = b; cur && hosts.has(cur); cur = hosts.get(cur)!.conn.bastion) {
        if (seen.has(cur)) {
          errors.push(new UserError(`bastion loop: ${[...seen, cur].join(' → ')}`, { pos: whereSet(h), hint: 'one of these hosts must be reached directly (bastion: null)' }));
          break;
        }
        seen.add(cur);
      }
      continue;
    }
    if (!/[.:@]/.test(b) && NAME_RE.test(b)) {
      const guess = didYouMean(b, hosts.keys());
      errors.push(
        new UserError(`bastion of ${h}: unknown host "${b}"${guess ? ` — did you mean "${guess}"?` : ''}`, {
          pos: whereSet(h),
          hint: 'a bastion is an inventory host name or an address ([user@]address[:port])',
        }),
      );
    }
  }
}

function findCycle(rawGroups: Record<string, RawGroup>, names: Set<string>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (g: string): string[] | undefined => {
    if (state.get(g) === 'done') return undefined;
    if (state.get(g) === 'visiting') return [...stack.slice(stack.indexOf(g)), g];
    state.set(g, 'visiting');
    stack.push(g);
    for (const c of rawGroups[g]?.children ?? []) {
      if (!names.has(c) || c === 'all') continue;
      const found = visit(c);
      if (found) return found;
    }
    stack.pop();
    state.set(g, 'done');
    return undefined;
  };
  for (const g of names) {
    const found = visit(g);
    if (found) return found;
  }
  return undefined;
}

/** all = 0; a top-level group = 1; a child = 1 + its deepest parent. */
function groupDepths(names: Set<string>, parents: Map<string, string[]>): Map<string, number> {
  const depth = new Map<string, number>([['all', 0]]);
  const of = (g: string): number => {
    const known = depth.get(g);
    if (known !== undefined) return known;
    const d = 1 + Math.max(0, ...(parents.get(g) ?? []).map(of));
    depth.set(g, d);
    return d;
  };
  names.forEach(of);
  return depth;
}

/** "all" first, then by depth, then by name: the order group vars apply in. */
export function orderGroups(groups: string[], depth: Map<string, number>): string[] {
  return [...groups].sort((a, b) => (depth.get(a) ?? 1) - (depth.get(b) ?? 1) || (a === 'all' ? -1 : b === 'all' ? 1 : a.localeCompare(b)));
}

async function firstExisting(paths: string[]): Promise<string | undefined> {
  for (const p of paths) if (await stat(p).catch(() => undefined)) return p;
  return undefined;
}

/** Validates each entry; an invalid one stays (empty) so references to it are not reported too. */
function parseEntries<S extends typeof hostSchema | typeof groupSchema>(
  entries: Record<string, unknown>,
  kind: 'hosts' | 'groups',
  schema: S,
  doc: YamlDoc,
  errors: UserError[],
  invalid: Set<string> = new Set(),
): Record<string, z.output<S>> {
  const out: Record<string, z.output<S>> = {};
  for (const [name, raw] of Object.entries(entries)) {
    const parsed = schema.safeParse(raw ?? {});
    if (parsed.success) out[name] = parsed.data as z.output<S>;
    else {
      errors.push(...zodErrors(parsed.error, doc, schema, [kind, name]));
      out[name] = {} as z.output<S>;
      invalid.add(name);
    }
  }
  return out;
}

function byPosition(a: UserError, b: UserError): number {
  const pa = a.pos ?? { file: '' };
  const pb = b.pos ?? { file: '' };
  return pa.file.localeCompare(pb.file) || (pa.line ?? 0) - (pb.line ?? 0) || (pa.col ?? 0) - (pb.col ?? 0);
}
