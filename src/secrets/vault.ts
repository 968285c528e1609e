/**
 * Per-value vault: AES-256-GCM with a key from scrypt(password, salt). The value's key path
 * and the header (vault id, KDF parameters) are authenticated as additional data, so a
 * tampered value, a wrong password, a value moved to another key and an edited header all
 * fail the same way: a UserError that names the key and never the plaintext.
 * The text format is documented in envelope.ts.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { UserError, type SourcePos } from '../errors.js';
import { Secret, MIN_SECRET_LENGTH } from './secret.js';
import type { VaultDecryptor } from './types.js';
import { Keyring, DEFAULT_VAULT_ID, PASSWORD_FILE_ENV } from './keyring.js';
import {
  aad,
  checkParams,
  formatEnvelope,
  parseEnvelope,
  isValidVaultId,
  DEFAULT_SCRYPT,
  IV_BYTES,
  TAG_BYTES,
  type Envelope,
  type ScryptParams,
} from './envelope.js';

export { Keyring, DEFAULT_VAULT_ID, PASSWORD_FILE_ENV } from './keyring.js';
export { DEFAULT_SCRYPT, vaultIdsIn, type ScryptParams } from './envelope.js';

const CIPHER = 'aes-256-gcm';

export interface EncryptOptions {
  /** scrypt parameters for new values (default DEFAULT_SCRYPT). */
  params?: ScryptParams;
}

/**
 * Encrypts one value for `keyPath` under `vaultId`. When `previous` (the value's current
 * envelope) decrypts, under the same id and key path, to the same plaintext, it is
 * returned unchanged: re-encrypting an unchanged file makes no noise in git.
 */
export function encryptValue(
  plain: string | Secret,
  keyPath: string,
  keyring: Keyring,
  vaultId: string = DEFAULT_VAULT_ID,
  previous?: string,
  opts: EncryptOptions = {},
): string {
  const text = typeof plain === 'string' ? plain : plain.reveal();
  if (text.length < MIN_SECRET_LENGTH) {
    throw new UserError(`refusing to encrypt ${keyPath}: a value shorter than ${MIN_SECRET_LENGTH} characters cannot be masked in output`, {
      hint: 'such a value protects nothing; keep it in plain text, or use a real secret',
    });
  }
  if (!isValidVaultId(vaultId)) throw new UserError(`invalid vault id '${vaultId}'`, { hint: 'vault ids are letters, digits, - and _' });
  const params = opts.params ?? DEFAULT_SCRYPT;
  checkParams(params);
  if (previous !== undefined) {
    const kept = unchangedEnvelope(previous, text, keyPath, keyring, vaultId, opts.params);
    if (kept) return kept;
  }
  const salt = keyring.saltFor(vaultId);
  const header = { vaultId, params };
  const key = requireKey(keyring, { ...header, salt }, keyPath);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(CIPHER, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(header, keyPath));
  const sealed = Buffer.concat([cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return formatEnvelope({ vaultId, params, salt, iv, sealed });
}

/** Decrypts one envelope bound to `keyPath`. Errors name the key and position, never the value. */
export function decryptValue(envelope: string, keyPath: string, keyring: Keyring, pos?: SourcePos): Secret {
  const env = parseEnvelope(envelope, keyPath, pos);
  const key = requireKey(keyring, env, keyPath, pos);
  const plain = open(env, key, keyPath);
  if (plain === undefined) {
    throw new UserError(
      `cannot decrypt ${keyPath}: wrong vault password for id '${env.vaultId}', or the value was altered or moved from another key`,
      {
        pos,
        hint: `check the password given for '${env.vaultId}' (--vault-password-file, ${PASSWORD_FILE_ENV}); a value only decrypts under the key it was encrypted for (re-encrypt it with \`infra vault encrypt-string --name ${keyPath}\`)`,
      },
    );
  }
  return new Secret(plain, keyPath);
}

export function createDecryptor(keyring: Keyring): VaultDecryptor {
  return { decrypt: (envelope, keyPath, pos) => decryptValue(envelope, keyPath, keyring, pos) };
}

/** Plaintext, or undefined when authentication fails (wrong key, altered, moved). */
function open(env: Envelope, key: Buffer, keyPath: string): string | undefined {
  const ct = env.sealed.subarray(0, env.sealed.length - TAG_BYTES);
  const tag = env.sealed.subarray(env.sealed.length - TAG_BYTES);
  const decipher = createDecipheriv(CIPHER, key, env.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad(env, keyPath));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

function requireKey(keyring: Keyring, env: Pick<Envelope, 'vaultId' | 'salt' | 'params'>, keyPath: string, pos?: SourcePos): Buffer {
  const key = keyring.key(env.vaultId, env.salt, env.params);
  if (key) return key;
  throw new UserError(`no vault password for id '${env.vaultId}' (needed for ${keyPath})`, {
    pos,
    hint: `pass --vault-password-file FILE (or ${env.vaultId}@FILE), or set ${PASSWORD_FILE_ENV}`,
  });
}

function unchangedEnvelope(
  previous: string,
  text: string,
  keyPath: string,
  keyring: Keyring,
  vaultId: string,
  wantedParams: ScryptParams | undefined,
): string | undefined {
  let env: Envelope;
  try {
    env = parseEnvelope(previous, keyPath);
  } catch {
    return undefined;
  }
  if (env.vaultId !== vaultId) return undefined;
  if (wantedParams && formatEnvelope({ ...env, params: wantedParams }) !== formatEnvelope(env)) return undefined;
  const key = keyring.key(env.vaultId, env.salt, env.params);
  if (!key) return undefined;
  keyring.adoptSalt(vaultId, env.salt);
  return open(env, key, keyPath) === text ? previous.trim() : undefined;
}
