/**
 * OpenSSH known_hosts: parse (plain names, "[host]:port", hashed "|1|salt|hash", comma
 * lists, wildcards, "!" negation, @revoked, comments), check a presented key, append a key.
 */
import { createHash, createHmac } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface KnownHostEntry {
  marker?: '@revoked' | '@cert-authority';
  patterns: string[];
  keyType: string;
  key: Buffer;
  line: number;
}

export type KeyVerdict =
  | { status: 'ok' }
  | { status: 'unknown' }
  /** Same host, a different key: fatal, no flag overrides it. */
  | { status: 'changed'; line: number; knownType: string }
  | { status: 'revoked'; line: number };

/** "host" on port 22, "[host]:port" otherwise: how OpenSSH names a host in known_hosts. */
export function hostKeyName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift() as KnownHostEntry['marker'];
    else if (fields[0].startsWith('@')) return; // unknown marker: ignore the line, as OpenSSH does
    const [hosts, keyType, keyB64] = fields;
    if (!hosts || !keyType || !keyB64) return;
    out.push({ marker, patterns: hosts.split(','), keyType, key: Buffer.from(keyB64, 'base64'), line: i + 1 });
  });
  return out;
}

/** Whether one comma-list of patterns names `name` (negations win, as in OpenSSH). */
export function patternsMatch(patterns: string[], name: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('|1|')) {
      if (hashedMatches(p, name)) matched = true;
    } else if (p.startsWith('!')) {
      if (globMatches(p.slice(1), name)) return false;
    } else if (globMatches(p, name)) matched = true;
  }
  return matched;
}

function hashedMatches(pattern: string, name: string): boolean {
  const [, , salt, hash] = pattern.split('|');
  if (!salt || !hash) return false;
  const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
  return mac === hash;
}

function globMatches(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern.toLowerCase() === name.toLowerCase();
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(name);
}

/** The key type inside an SSH wire-format public key blob ("ssh-ed25519", ...). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** "SHA256:..." as printed by ssh-keygen -lf. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

export function checkHostKey(entries: KnownHostEntry[], name: string, blob: Buffer): KeyVerdict {
  const type = keyTypeOf(blob);
  const revoked = entries.find((e) => e.marker === '@revoked' && e.key.equals(blob));
  if (revoked) return { status: 'revoked', line: revoked.line };
  const mine = entries.filter((e) => !e.marker && patternsMatch(e.patterns, name));
  if (mine.some((e) => e.key.equals(blob))) return { status: 'ok' };
  // Any other key on record for this host is a change (a key of another type included:
  // OpenSSH's accept-new refuses that case too, and an attacker can pick the type).
  const other = mine.find((e) => e.keyType === type) ?? mine[0];
  if (other) return { status: 'changed', line: other.line, knownType: other.keyType };
  return { status: 'unknown' };
}

/** Host key types already on record for `name`, to offer those first (as OpenSSH does). */
export function knownKeyTypes(entries: KnownHostEntry[], name: string): string[] {
  return [...new Set(entries.filter((e) => !e.marker && patternsMatch(e.patterns, name)).map((e) => e.keyType))];
}

export class KnownHosts {
  #entries?: Promise<KnownHostEntry[]>;
  /** Appends are serialized so concurrent --accept-new connects do not interleave lines. */
  #writes: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  entries(): Promise<KnownHostEntry[]> {
    this.#entries ??= readFile(this.path, 'utf8').then(parseKnownHosts, (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [];
      throw e;
    });
    return this.#entries;
  }

  async add(name: string, blob: Buffer): Promise<void> {
    const entry = `${name} ${keyTypeOf(blob)} ${blob.toString('base64')}\n`;
    const write = this.#writes.then(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      const current = await readFile(this.path, 'utf8').catch(() => '');
      await appendFile(this.path, (current && !current.endsWith('\n') ? '\n' : '') + entry, { mode: 0o644 });
      const list = await this.entries();
      list.push(...parseKnownHosts(entry).map((e) => ({ ...e, line: 0 })));
    });
    this.#writes = write.catch(() => {});
    return write;
  }
}
