/**
 * The text form of one vault value: a single line, safe as a YAML plain scalar after the
 * `!vault` tag (no spaces, no `#`, no `,`, no `: `), so values can sit anywhere in a vars
 * file, block or flow style:
 *
 *   db_password: !vault $INFRA;1;prod;scrypt:N=32768:r=8:p=1;<salt>;<iv>;<ciphertext+tag>
 *
 *   $INFRA               marker
 *   1                    format version
 *   prod                 vault id: which password of the keyring ([A-Za-z0-9_-], 1-64 chars)
 *   scrypt:N=..:r=..:p=.. key derivation and its parameters (read back when decrypting)
 *   salt                 scrypt salt, base64 (16 bytes; shared by the values of one id in a file)
 *   iv                   AES-256-GCM nonce, base64 (12 random bytes, one per value)
 *   ciphertext+tag       base64 of the ciphertext followed by the 16-byte GCM tag
 *
 * The additional authenticated data is the header up to the salt plus the value's key path
 * (see aad()), so editing any header field or moving the value to another key fails.
 */
import { UserError, type SourcePos } from '../errors.js';

export const MARKER = '$INFRA';
export const VERSION = '1';
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const SALT_BYTES = 16;

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** 2^15: ~100 ms and 32 MiB per derivation on this project's CI machines (see report). */
export const DEFAULT_SCRYPT: ScryptParams = { N: 32768, r: 8, p: 1 };

/** Bounds on header parameters: a crafted header must not make us allocate gigabytes. */
const LIMITS = { minN: 2 ** 10, maxN: 2 ** 20, maxR: 32, maxP: 16, maxMemBytes: 256 * 1024 * 1024 };

export interface Envelope {
  vaultId: string;
  params: ScryptParams;
  salt: Buffer;
  iv: Buffer;
  /** Ciphertext followed by the GCM tag. */
  sealed: Buffer;
}

const VAULT_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function isValidVaultId(id: string): boolean {
  return VAULT_ID.test(id);
}

export function formatParams(p: ScryptParams): string {
  return `scrypt:N=${p.N}:r=${p.r}:p=${p.p}`;
}

/** The header fields bound as additional data, then the key path. */
export function aad(e: Pick<Envelope, 'vaultId' | 'params'>, keyPath: string): Buffer {
  return Buffer.from(`${MARKER};${VERSION};${e.vaultId};${formatParams(e.params)};${keyPath}`, 'utf8');
}

export function formatEnvelope(e: Envelope): string {
  return [MARKER, VERSION, e.vaultId, formatParams(e.params), b64(e.salt), b64(e.iv), b64(e.sealed)].join(';');
}

/** Parses and bounds-checks an envelope; a malformed one is a UserError naming the key. */
export function parseEnvelope(text: string, keyPath: string, pos?: SourcePos): Envelope {
  const bad = (why: string) =>
    new UserError(`malformed vault value at ${keyPath}: ${why}`, {
      pos,
      hint: 'a vault value is one line made by `infra vault encrypt-string`; it may have been cut or re-wrapped',
    });
  const fields = text.trim().split(';');
  if (fields[0] !== MARKER) throw bad(`it does not start with ${MARKER}`);
  if (fields[1] !== VERSION) throw bad(`unsupported format version '${fields[1] ?? ''}' (this infra reads ${VERSION})`);
  if (fields.length !== 7) throw bad(`expected 7 ';'-separated fields, found ${fields.length}`);
  const [, , vaultId, kdf, salt, iv, sealed] = fields;
  if (!isValidVaultId(vaultId)) throw bad(`invalid vault id '${vaultId}'`);
  const params = parseParams(kdf, bad);
  const env: Envelope = {
    vaultId,
    params,
    salt: unb64(salt, 'salt', bad),
    iv: unb64(iv, 'iv', bad),
    sealed: unb64(sealed, 'ciphertext', bad),
  };
  if (env.salt.length < SALT_BYTES || env.salt.length > 64) throw bad(`salt must be ${SALT_BYTES}-64 bytes`);
  if (env.iv.length !== IV_BYTES) throw bad(`iv must be ${IV_BYTES} bytes`);
  if (env.sealed.length < TAG_BYTES) throw bad('ciphertext is shorter than the authentication tag');
  return env;
}

function parseParams(kdf: string, bad: (why: string) => UserError): ScryptParams {
  const m = /^scrypt:N=(\d{1,10}):r=(\d{1,4}):p=(\d{1,4})$/.exec(kdf);
  if (!m) throw bad(`unknown key derivation '${kdf}' (expected scrypt:N=..:r=..:p=..)`);
  const p = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  checkParams(p, bad);
  return p;
}

export function checkParams(p: ScryptParams, bad: (why: string) => Error = (w) => new UserError(w)): void {
  const powerOfTwo = (n: number) => n > 1 && (n & (n - 1)) === 0;
  if (!powerOfTwo(p.N) || p.N < LIMITS.minN || p.N > LIMITS.maxN) throw bad(`scrypt N=${p.N} must be a power of two in [2^10, 2^20]`);
  if (p.r < 1 || p.r > LIMITS.maxR) throw bad(`scrypt r=${p.r} must be 1-${LIMITS.maxR}`);
  if (p.p < 1 || p.p > LIMITS.maxP) throw bad(`scrypt p=${p.p} must be 1-${LIMITS.maxP}`);
  if (scryptMemory(p) > LIMITS.maxMemBytes) throw bad(`scrypt N=${p.N} r=${p.r} needs more than 256 MiB`);
}

/** Bytes scrypt needs for these parameters (128·N·r, plus room for p lanes). */
export function scryptMemory(p: ScryptParams): number {
  return 128 * p.N * p.r + 128 * p.r * p.p;
}

const b64 = (b: Buffer) => b.toString('base64');

function unb64(s: string, what: string, bad: (why: string) => UserError): Buffer {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4 !== 0) throw bad(`${what} is not base64`);
  return Buffer.from(s, 'base64');
}

/** Vault ids referenced by the envelopes in a text (to ask only for the passwords needed). */
export function vaultIdsIn(text: string): string[] {
  const ids = new Set<string>();
  for (const m of text.matchAll(/\$INFRA;1;([A-Za-z0-9_-]{1,64});/g)) ids.add(m[1]);
  return [...ids];
}
