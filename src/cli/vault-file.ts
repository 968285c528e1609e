/**
 * `!vault` values inside a YAML vars file, for the `infra vault` commands (its only user: it
 * sits here, above the loaders whose key paths it reuses, not in secrets/ below them). Files are edited
 * by splicing the source text at the scalars' own offsets, never re-serialised: comments,
 * ordering, quoting and indentation of everything else stay byte-for-byte as they were.
 *
 * Tags:
 *   !vault <envelope>   an encrypted value (envelope.ts)
 *   !encrypt <value>    plaintext to encrypt: what `edit` shows for vault values, and what a
 *                       person may write by hand before `infra vault encrypt FILE`
 *
 * A value's key path is bound into its ciphertext, so it is computed exactly as the loaders do
 * (vaultKeyPathsFor): in a vars file (group_vars/, host_vars/) the dotted path of map keys and
 * sequence indexes from the root (`db.password`, `users.0.password`); in hosts.yaml relative
 * to the `vars:` mapping (`hosts.db1.vars.db.password` → `db.password`) or the connection
 * key's name (`becomePassword`); in a playbook relative to a play's or role reference's `vars:`.
 * Elsewhere in those files a `!vault` value is not allowed.
 */
import { parseDocument, isMap, isSeq, isScalar, isPair, LineCounter, type Scalar, type Node } from 'yaml';
import { UserError, didYouMean, type SourcePos } from '../errors.js';
import { MIN_SECRET_LENGTH } from '../secrets/secret.js';
import { parseEnvelope } from '../secrets/envelope.js';
import { encryptValue, decryptValue } from '../secrets/vault.js';
import type { Keyring } from '../secrets/keyring.js';
import { hostsFileKeyPath } from '../inventory/load.js';
import { playbookKeyPath } from '../playbook/load.js';
import { VAULT_TAG, ENCRYPT_TAG, VAULT_TAGS, type YamlPath } from '../yaml/positions.js';

export function keyPathOf(segments: ReadonlyArray<string | number>): string {
  return segments.join('.');
}

/** The vault key path of the value at a path, or undefined where no `!vault` value may be. */
export type VaultKeyPathFn = (path: YamlPath) => string | undefined;

/**
 * Which file this is, by name and shape, and so how its loader computes key paths:
 * hosts.yaml / hosts.yml → hostsFileKeyPath; a top-level sequence (a list of plays) →
 * playbookKeyPath; anything else is a vars file (the whole path).
 */
export function vaultKeyPathsFor(file: string, root: unknown): VaultKeyPathFn {
  if (/(^|[\\/])hosts\.ya?ml$/.test(file)) return hostsFileKeyPath;
  if (isSeq(root)) return playbookKeyPath;
  return keyPathOf;
}

export interface Leaf {
  /** Dotted path from the document's root: where the value is (messages, --key). */
  path: string;
  /** Bound into the ciphertext; undefined where the file's loader allows no `!vault` value. */
  keyPath: string | undefined;
  node: Scalar;
  pos: SourcePos;
  /** Offset where the node (its tag included) starts, and where its value ends. */
  start: number;
  end: number;
  /** Block-map value alone on its line: may be rewritten as a literal block at this indent. */
  literalIndent?: number;
}

export interface VarsFile {
  text: string;
  file: string;
  leaves: Leaf[];
}

export function parseVarsFile(text: string, file: string, keyPaths?: VaultKeyPathFn): VarsFile {
  const lc = new LineCounter();
  const doc = parseDocument(text, { customTags: VAULT_TAGS, lineCounter: lc, keepSourceTokens: true });
  const posAt = (offset: number): SourcePos => ({ file, ...lc.linePos(offset) });
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw new UserError(`invalid YAML: ${e.message.split('\n')[0]}`, { pos: posAt(e.pos[0]) });
  }
  const keyPathAt = keyPaths ?? vaultKeyPathsFor(file, doc.contents);
  const leaves: Leaf[] = [];
  const walk = (node: unknown, path: Array<string | number>, literalIndent?: number): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const keyStart = (pair.key as Node | null)?.range?.[0];
        const indent = !node.flow && keyStart !== undefined ? lc.linePos(keyStart).col - 1 + 2 : undefined;
        walk(pair.value, [...path, key], indent);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    } else if (isScalar(node) && node.range) {
      const [valueStart, valueEnd] = node.range;
      const start = node.tag ? tagStart(text, node.tag, valueStart, posAt(valueStart)) : valueStart;
      const aloneOnLine = /^[ \t]*(\r?\n|$)/.test(text.slice(valueEnd));
      leaves.push({
        path: keyPathOf(path),
        keyPath: keyPathAt(path),
        node,
        pos: posAt(start),
        start,
        end: valueEnd,
        literalIndent: aloneOnLine ? literalIndent : undefined,
      });
    }
  };
  walk(doc.contents, []);
  return { text, file, leaves };
}

/** Where the tag written before a value begins (only whitespace may separate them). */
function tagStart(text: string, tag: string, valueStart: number, pos: SourcePos): number {
  const written = tag.startsWith('!') ? tag : `!${tag}`;
  const at = text.lastIndexOf(written, valueStart);
  if (at < 0 || !/^\s*$/.test(text.slice(at + written.length, valueStart))) {
    throw new UserError(`cannot rewrite this value: write its ${written} tag right before the value`, { pos });
  }
  return at;
}

interface Splice {
  start: number;
  end: number;
  text: string;
}

function applySplices(text: string, splices: Splice[]): string {
  let out = text;
  for (const s of [...splices].sort((a, b) => b.start - a.start)) out = out.slice(0, s.start) + s.text + out.slice(s.end);
  return out;
}

const isVault = (l: Leaf) => l.node.tag === VAULT_TAG;
const isMarked = (l: Leaf) => l.node.tag === ENCRYPT_TAG;

/** A block scalar's range ends after its last line break; keep one so the next key stays on its line. */
function replacement(l: Leaf, text: string, source: string): Splice {
  const block = l.node.type === 'BLOCK_LITERAL' || l.node.type === 'BLOCK_FOLDED';
  return { start: l.start, end: l.end, text: block && source[l.end - 1] === '\n' ? `${text}\n` : text };
}

/** A plaintext value as YAML: a literal block where the layout allows it, else double-quoted. */
export function yamlScalar(value: string, tag: string | undefined, literalIndent: number | undefined): string {
  const prefix = tag ? `${tag} ` : '';
  const multiLine = value.includes('\n') && !/[\r\u0000-\u0008\u000b-\u001f\u007f]/.test(value);
  if (multiLine && literalIndent !== undefined && !/^\n*[ \t]/.test(value)) {
    const body = value.replace(/\n+$/, '');
    const trailing = value.length - body.length;
    const chomp = trailing === 0 ? '-' : trailing === 1 ? '' : '+';
    const pad = ' '.repeat(literalIndent);
    const lines = (body + '\n'.repeat(Math.max(0, trailing - 1))).split('\n').map((l) => (l ? pad + l : ''));
    return `${prefix}|${chomp}\n${lines.join('\n')}`;
  }
  return prefix + JSON.stringify(value); // a JSON string is a valid YAML double-quoted scalar
}

export interface DecryptResult {
  text: string;
  /** Where the values were (paths from the root). */
  keyPaths: string[];
}

/** The key path a value is (to be) encrypted under; a UserError where the loader forbids vault values. */
function vaultKeyPath(l: Leaf): string {
  if (l.keyPath !== undefined) return l.keyPath;
  throw new UserError(`${l.path}: a vault value is not allowed here`, {
    pos: l.pos,
    hint: 'in hosts.yaml only under vars: (or keyPassphrase / becomePassword); in a playbook only under a play\'s or role\'s vars:',
  });
}

/**
 * Replaces every `!vault` value by its plaintext: untagged (decrypt, view) or tagged
 * `!encrypt` (the edit buffer, so saving encrypts them again).
 */
export function decryptText(f: VarsFile, keyring: Keyring, opts: { mark: boolean }): DecryptResult {
  const splices: Splice[] = [];
  const keyPaths: string[] = [];
  for (const l of f.leaves.filter(isVault)) {
    const plain = decryptValue(String(l.node.value), vaultKeyPath(l), keyring, l.pos).reveal();
    splices.push(replacement(l, yamlScalar(plain, opts.mark ? ENCRYPT_TAG : undefined, l.literalIndent), f.text));
    keyPaths.push(l.path);
  }
  return { text: applySplices(f.text, splices), keyPaths };
}

export interface EncryptOptions {
  /** Vault id for values that had none before. */
  vaultId: string;
  /** Only these key paths (must exist). */
  keys?: string[];
  /** 'auto': the `!encrypt` values if any, else every string value. 'marked': only `!encrypt`. */
  select?: 'auto' | 'marked';
  /** Envelopes a value had before (edit), by path from the root: kept when the plaintext did not change. */
  previous?: Map<string, string>;
}

export interface EncryptResult {
  text: string;
  /** These lists name values by their path from the root. */
  encrypted: string[];
  kept: string[];
  skipped: Array<{ keyPath: string; why: string }>;
}

export function encryptText(f: VarsFile, keyring: Keyring, opts: EncryptOptions): EncryptResult {
  adoptFileSalts(f, keyring, opts.previous);
  const result: EncryptResult = { text: f.text, encrypted: [], kept: [], skipped: [] };
  const chosen = chooseLeaves(f, opts, result.skipped);
  const splices: Splice[] = [];
  for (const l of chosen) {
    const keyPath = vaultKeyPath(l);
    const previous = opts.previous?.get(l.path);
    const vaultId = previousVaultId(previous, keyPath) ?? opts.vaultId;
    const envelope = encryptValue(String(l.node.value), keyPath, keyring, vaultId, previous);
    (envelope === previous?.trim() ? result.kept : result.encrypted).push(l.path);
    splices.push(replacement(l, `${VAULT_TAG} ${envelope}`, f.text));
  }
  result.text = applySplices(f.text, splices);
  return result;
}

function chooseLeaves(f: VarsFile, opts: EncryptOptions, skipped: EncryptResult['skipped']): Leaf[] {
  if (opts.keys?.length) {
    // A --key names a path from the root, or a vault key path (every value under it: in
    // hosts.yaml `db.password` may be the vars of several hosts).
    return opts.keys.flatMap((k) => {
      const exact = f.leaves.filter((l) => l.path === k);
      const found = exact.length ? exact : f.leaves.filter((l) => l.keyPath === k);
      if (!found.length) {
        const near = didYouMean(k, f.leaves.flatMap((l) => (l.keyPath !== undefined ? [l.path, l.keyPath] : [l.path])));
        throw new UserError(`no scalar value at key path '${k}' in ${f.file}`, { hint: near ? `did you mean '${near}'?` : 'key paths are dotted: db.password, users.0.password' });
      }
      for (const l of found) if (isVault(l)) skipped.push({ keyPath: l.path, why: 'already encrypted' });
      return found.filter((l) => !isVault(l));
    });
  }
  const marked = f.leaves.filter(isMarked);
  if (marked.length || opts.select === 'marked') return marked;
  return f.leaves.filter((l) => {
    if (isVault(l) || l.keyPath === undefined) return false; // hosts.yaml addresses, playbook tasks: not secrets

    if (typeof l.node.value !== 'string') return skipped.push({ keyPath: l.path, why: 'not a string' }), false;
    if (l.node.value.length < MIN_SECRET_LENGTH) return skipped.push({ keyPath: l.path, why: `shorter than ${MIN_SECRET_LENGTH} characters` }), false;
    return true;
  });
}

/** New values of an id share the salt its existing values use: one key derivation per file. */
function adoptFileSalts(f: VarsFile, keyring: Keyring, previous?: Map<string, string>): void {
  const envelopes = [...(previous?.values() ?? []), ...f.leaves.filter(isVault).map((l) => String(l.node.value))];
  for (const text of envelopes) {
    try {
      const e = parseEnvelope(text, '');
      keyring.adoptSalt(e.vaultId, e.salt);
    } catch {
      // a malformed value is reported when it is decrypted, not here
    }
  }
}

function previousVaultId(previous: string | undefined, keyPath: string): string | undefined {
  if (previous === undefined) return undefined;
  try {
    return parseEnvelope(previous, keyPath).vaultId;
  } catch {
    return undefined;
  }
}

/** Path from the root → envelope of every `!vault` value (the "before" of an edit). */
export function envelopesOf(f: VarsFile): Map<string, string> {
  return new Map(f.leaves.filter(isVault).map((l) => [l.path, String(l.node.value)]));
}

/** Re-encrypts every `!vault` value under the new keyring (same ids, new salts). */
export function rekeyText(f: VarsFile, oldRing: Keyring, newRing: Keyring): DecryptResult {
  const splices: Splice[] = [];
  const keyPaths: string[] = [];
  for (const l of f.leaves.filter(isVault)) {
    const envelope = String(l.node.value);
    const keyPath = vaultKeyPath(l);
    const { vaultId } = parseEnvelope(envelope, keyPath, l.pos);
    const plain = decryptValue(envelope, keyPath, oldRing, l.pos);
    splices.push(replacement(l, `${VAULT_TAG} ${encryptValue(plain, keyPath, newRing, vaultId)}`, f.text));
    keyPaths.push(l.path);
  }
  return { text: applySplices(f.text, splices), keyPaths };
}
