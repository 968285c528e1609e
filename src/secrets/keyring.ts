/**
 * Vault passwords by vault id, and the keys derived from them. A password given without an
 * id ("--vault-password-file FILE") is the fallback for every id that has none of its own,
 * so a single-password setup needs no ids at all.
 *
 * Keys are derived with scrypt (slow on purpose, ~100 ms at the default parameters) and
 * cached per (id, salt, parameters): a run derives once per vault id per salt, and
 * `infra vault encrypt` reuses a file's salt for its id so a file costs one derivation.
 */
import { scryptSync, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { UserError } from '../errors.js';
import { registerSecretValue } from './secret.js';
import { isValidVaultId, scryptMemory, SALT_BYTES, type ScryptParams } from './envelope.js';

export const DEFAULT_VAULT_ID = 'default';
export const PASSWORD_FILE_ENV = 'INFRA_VAULT_PASSWORD_FILE';

export interface KeyringSources {
  /** --vault-password-file: "FILE", "id@FILE", several separated by commas (or an array). */
  passwordFile?: string | string[];
  /** Reads INFRA_VAULT_PASSWORD_FILE (same syntax); the command line wins per id. */
  env?: NodeJS.ProcessEnv;
  /** Asks for a password (TTY only, no echo: see promptHidden). */
  prompt?: (id: string) => Promise<string>;
  /**
   * Ids the caller will need (from vaultIdsIn): prompt for each one not covered by a file.
   * Without it, the prompt is used once, for the fallback password, when no file was given.
   */
  ids?: string[];
}

export class Keyring {
  readonly #passwords = new Map<string, string>();
  #fallback?: string;
  readonly #keys = new Map<string, Buffer>();
  readonly #salts = new Map<string, Buffer>();
  /** scrypt derivations done so far (tests and the benchmark read it). */
  derivations = 0;

  /** Passwords by id; `fallback` serves every other id. */
  constructor(passwords: Record<string, string> = {}, fallback?: string) {
    for (const [id, pw] of Object.entries(passwords)) this.#set(id, pw);
    if (fallback !== undefined) this.#setFallback(fallback);
  }

  static async fromSources(s: KeyringSources): Promise<Keyring> {
    const ring = new Keyring();
    const specs = [s.env?.[PASSWORD_FILE_ENV], ...[s.passwordFile ?? []].flat()];
    for (const spec of specs) {
      if (!spec) continue;
      for (const entry of parsePasswordFileSpec(spec)) {
        const pw = await readPasswordFile(entry.file);
        if (entry.id === undefined) ring.#setFallback(pw);
        else ring.#set(entry.id, pw);
      }
    }
    if (s.prompt) {
      const missing = s.ids ? s.ids.filter((id) => !ring.has(id)) : ring.isEmpty() ? [undefined] : [];
      for (const id of missing) {
        const pw = checkPassword(await s.prompt(id ?? DEFAULT_VAULT_ID), 'the prompt');
        if (id === undefined) ring.#setFallback(pw);
        else ring.#set(id, pw);
      }
    }
    return ring;
  }

  has(id: string): boolean {
    return this.#passwords.has(id) || this.#fallback !== undefined;
  }

  hasFallback(): boolean {
    return this.#fallback !== undefined;
  }

  isEmpty(): boolean {
    return this.#passwords.size === 0 && this.#fallback === undefined;
  }

  /** Ids with a password of their own (the fallback is not listed). */
  ids(): string[] {
    return [...this.#passwords.keys()];
  }

  /** The 32-byte AES key for (id, salt, params); undefined when there is no password for id. */
  key(id: string, salt: Buffer, params: ScryptParams): Buffer | undefined {
    const password = this.#passwords.get(id) ?? this.#fallback;
    if (password === undefined) return undefined;
    const cacheKey = `${id}\0${salt.toString('base64')}\0${params.N}:${params.r}:${params.p}`;
    let key = this.#keys.get(cacheKey);
    if (!key) {
      key = scryptSync(password.normalize('NFC'), salt, 32, { ...params, maxmem: scryptMemory(params) + 1024 * 1024 });
      this.derivations++;
      this.#keys.set(cacheKey, key);
    }
    return key;
  }

  /** The salt new values of this id get: one per id per keyring, unless adopted from a file. */
  saltFor(id: string): Buffer {
    let salt = this.#salts.get(id);
    if (!salt) {
      salt = randomBytes(SALT_BYTES);
      this.#salts.set(id, salt);
    }
    return salt;
  }

  /** Makes new values of this id share an existing salt (the first one seen in a file). */
  adoptSalt(id: string, salt: Buffer): void {
    if (!this.#salts.has(id)) this.#salts.set(id, salt);
  }

  #set(id: string, password: string): void {
    if (!isValidVaultId(id)) throw new UserError(`invalid vault id '${id}'`, { hint: 'vault ids are letters, digits, - and _' });
    registerSecretValue(password);
    this.#passwords.set(id, password);
  }

  #setFallback(password: string): void {
    registerSecretValue(password);
    this.#fallback = password;
  }
}

export interface PasswordFileEntry {
  id?: string;
  file: string;
}

/** "FILE" | "id@FILE" [, ...]. An existing file named literally wins over the id@ reading. */
export function parsePasswordFileSpec(spec: string): PasswordFileEntry[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^([A-Za-z0-9_-]{1,64})@(.+)$/.exec(entry);
      if (m && !existsSync(entry)) return { id: m[1], file: m[2] };
      return { file: entry };
    });
}

async function readPasswordFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read vault password file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      hint: `--vault-password-file takes FILE or id@FILE (several separated by commas); so does ${PASSWORD_FILE_ENV}`,
    });
  }
  return checkPassword(text, file);
}

/** Trailing whitespace (the newline editors add) is not part of the password. */
function checkPassword(raw: string, source: string): string {
  const pw = raw.trimEnd();
  if (pw.length === 0) throw new UserError(`empty vault password from ${source}`);
  return pw;
}
