/**
 * YAML with positions, the layer under the inventory and playbook loaders: parses a file into
 * plain JS values and keeps, for every node, where it was written, so every later error
 * (schema, unknown group, bad role var) can name file:line:col. Duplicate keys and malformed
 * YAML are errors; `!vault` scalars are decrypted in place into Secrets (through the
 * decryptor the caller passes in) while the tree is built.
 */
import { readFile } from 'node:fs/promises';
import { relative, isAbsolute } from 'node:path';
import {
  parseDocument,
  LineCounter,
  isMap,
  isSeq,
  isScalar,
  isAlias,
  isPair,
  type Alias,
  type Document,
  type ScalarTag,
  type Node,
} from 'yaml';
import { UserError, type SourcePos } from '../errors.js';
import type { VaultDecryptor } from '../secrets/types.js';

export type YamlPath = ReadonlyArray<string | number>;

/** Values that aliases may expand to in one document (far above any real inventory's reuse). */
export const MAX_ALIASED_VALUES = 100_000;
const MAX_DEPTH = 100;
/** Keys that reach an object's prototype when assigned: never variables. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** The error for a key that must not be used (prototype pollution), or undefined. */
export function forbiddenKey(name: string, pos: SourcePos): UserError | undefined {
  if (!FORBIDDEN_KEYS.has(name)) return undefined;
  return new UserError(`"${name}" cannot be a key`, { pos, hint: 'it names a JavaScript object internal (prototype pollution): rename the key' });
}

export const VAULT_HINT = 'pass --vault-password-file FILE or set INFRA_VAULT_PASSWORD_FILE';

/** An encrypted value (secrets/envelope.ts). */
export const VAULT_TAG = '!vault';
/** Plaintext still to be encrypted (`infra vault encrypt FILE`): an error wherever it is loaded. */
export const ENCRYPT_TAG = '!encrypt';

/** Tag definitions for yaml's parser: both keep the scalar's text; the reader decides what they become. */
export const VAULT_TAGS: ScalarTag[] = [
  { tag: VAULT_TAG, resolve: (s: string) => s },
  { tag: ENCRYPT_TAG, resolve: (s: string) => s },
];

export interface YamlOptions {
  decryptor?: VaultDecryptor;
  /**
   * The vault key path of a `!vault` value at `path` (bound into its ciphertext), or
   * undefined when a `!vault` value is not allowed there. Default: the whole path, dotted.
   */
  vaultKeyPath?: (path: YamlPath) => string | undefined;
}

export interface YamlDoc {
  /** The file as errors show it (relative to cwd when inside it). */
  file: string;
  /** undefined when the YAML is malformed. */
  value: unknown;
  /** Syntax errors, and values that could not be decrypted. */
  errors: UserError[];
  /** Where the value at `path` starts (the nearest existing ancestor if absent). */
  pos(path: YamlPath): SourcePos;
  /** Where the key of the value at `path` is written (falls back to pos()). */
  keyPos(path: YamlPath): SourcePos;
}

interface NodePos {
  key?: SourcePos;
  value: SourcePos;
}

const pathKey = (path: YamlPath): string => JSON.stringify(path);

export function displayPath(file: string, cwd = process.cwd()): string {
  const rel = relative(cwd, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

export async function loadYamlFile(absPath: string, opts: YamlOptions & { cwd?: string } = {}): Promise<YamlDoc> {
  const file = displayPath(absPath, opts.cwd);
  let text: string;
  try {
    text = await readFile(absPath, 'utf8');
  } catch (e) {
    const err = new UserError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { pos: { file } });
    return { file, value: undefined, errors: [err], pos: () => ({ file }), keyPos: () => ({ file }) };
  }
  return parseYaml(text, file, opts);
}

export function parseYaml(text: string, file: string, opts: YamlOptions = {}): YamlDoc {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: true, customTags: VAULT_TAGS });
  const at = (offset: number | undefined): SourcePos => (offset === undefined ? { file } : { file, ...lc.linePos(offset) });
  const positions = new Map<string, NodePos>();
  const errors: UserError[] = [];

  const problems = [...doc.errors, ...doc.warnings];
  for (const e of problems) {
    const message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    const hint =
      e.code === 'DUPLICATE_KEY'
        ? 'each key may appear once in a mapping: remove or rename one of them'
        : e.code === 'TAG_RESOLVE_FAILED'
          ? 'the only tags allowed are !vault (encrypted values) and !encrypt'
          : 'check the indentation and quoting around this line';
    errors.push(new UserError(`invalid YAML: ${message}`, { pos: at(e.pos[0]), hint }));
  }

  const finder = (which: 'key' | 'value') => (path: YamlPath): SourcePos => {
    for (let n = path.length; n >= 0; n--) {
      const p = positions.get(pathKey(path.slice(0, n)));
      if (p) return (which === 'key' && n === path.length && p.key) || p.value;
    }
    return { file, line: 1, col: 1 };
  };
  const result = (value: unknown): YamlDoc => ({
    file,
    value,
    errors,
    pos: finder('value'),
    keyPos: finder('key'),
  });
  if (problems.length) return result(undefined);

  const keyPathOf = opts.vaultKeyPath ?? ((p: YamlPath) => p.join('.'));

  // An alias is expanded where it is used, so nested aliases multiply: a few hundred bytes
  // ("billion laughs") would expand to 10^9 values. Count what aliases expand to and stop.
  let aliased = 0;
  const anchored = new Map<Alias, unknown>(); // resolve() walks the whole document: once per alias
  const resolveAlias = (alias: Alias): unknown => {
    if (!anchored.has(alias)) anchored.set(alias, alias.resolve(doc as Document));
    return anchored.get(alias);
  };
  const build = (node: unknown, path: YamlPath, keyPos?: SourcePos, depth = 0, viaAlias?: SourcePos): unknown => {
    if (depth > MAX_DEPTH) throw new UserError(`YAML nested more than ${MAX_DEPTH} levels deep`, { pos: keyPos ?? { file } });
    if (isAlias(node)) {
      // Values inside an expansion are reported where the alias is used: one position, not one
      // per repeated value.
      const use = viaAlias ?? at(node.range?.[0]);
      if (!viaAlias) positions.set(pathKey(path), { key: keyPos, value: use });
      return build(resolveAlias(node), path, keyPos, depth + 1, use);
    }
    if (viaAlias && ++aliased > MAX_ALIASED_VALUES) {
      throw new UserError(`YAML aliases expand to more than ${MAX_ALIASED_VALUES} values`, {
        pos: viaAlias,
        hint: 'each use of an alias repeats the anchored value, and nested aliases multiply: write the values out, or nest fewer aliases',
      });
    }
    const range = (node as Node | null)?.range;
    const tag = (node as Node | null)?.tag;
    // A tagged value starts at its tag (`!vault ...`), not after it.
    const tagAt = range && tag?.startsWith('!') ? text.lastIndexOf(tag, range[0]) : -1;
    const start = tagAt >= 0 ? tagAt : range?.[0];
    const value = start !== undefined ? at(start) : (keyPos ?? { file });
    if (!viaAlias) positions.set(pathKey(path), { key: keyPos, value });
    if (node === null || node === undefined) return null;
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const k = isScalar(pair.key) ? pair.key.value : pair.key;
        const kPos = at((pair.key as Node | null)?.range?.[0]);
        if (k !== null && typeof k === 'object') {
          errors.push(new UserError('mapping keys must be plain scalars', { pos: kPos }));
          continue;
        }
        const name = String(k);
        const forbidden = forbiddenKey(name, kPos);
        if (forbidden) {
          errors.push(forbidden);
          continue;
        }
        Object.defineProperty(out, name, {
          value: build(pair.value, [...path, name], kPos, depth + 1, viaAlias),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    if (isSeq(node)) return node.items.map((item, i) => build(item, [...path, i], undefined, depth + 1, viaAlias));
    if (isScalar(node)) {
      if (node.tag === VAULT_TAG) return decrypt(String(node.value), path, value);
      if (node.tag === ENCRYPT_TAG) {
        errors.push(
          new UserError(`${formatPath(path)}: a value marked !encrypt is still in clear`, {
            pos: value,
            hint: `encrypt it first: infra vault encrypt ${file}`,
          }),
        );
        return null;
      }
      return node.value;
    }
    return null;
  };

  const decrypt = (envelope: string, path: YamlPath, pos: SourcePos): unknown => {
    const keyPath = keyPathOf(path);
    if (keyPath === undefined) {
      errors.push(
        new UserError(`${formatPath(path)}: a !vault value is not allowed here`, {
          pos,
          hint: 'vault values belong in vars (and in keyPassphrase / becomePassword)',
        }),
      );
      return null;
    }
    if (!opts.decryptor) {
      errors.push(new UserError(`${formatPath(path)}: cannot decrypt a !vault value: no vault password given`, { pos, hint: VAULT_HINT }));
      return null;
    }
    try {
      return opts.decryptor.decrypt(envelope.trim(), keyPath, pos);
    } catch (e) {
      if (e instanceof UserError) {
        errors.push(e.pos ? e : new UserError(e.message, { pos, hint: e.hint }));
        return null;
      }
      throw e;
    }
  };

  try {
    return result(build(doc.contents, [], undefined));
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    errors.push(e);
    return result(undefined);
  }
}

/** `hosts.db1.vars`, `[0].tasks[2]`: a path for people. */
export function formatPath(path: YamlPath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out || '(top level)';
}
