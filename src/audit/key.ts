/**
 * The controller's audit signing key: an ed25519 private key in $INFRA_AUDIT_KEY, else
 * $XDG_CONFIG_HOME/infra/audit-key.pem (~/.config/infra/...), created 0600 on first use. It is
 * kept apart from the log ($XDG_STATE_HOME/infra/audit.jsonl): whoever can rewrite the log, or
 * holds a copy of it, cannot sign a record.
 *
 * Signatures rather than a MAC: verifying needs only the public key (`infra audit key` prints
 * it), so an auditor or a CI job can check every record without being able to write one.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.js';

export const AUDIT_KEY_ENV = 'INFRA_AUDIT_KEY';

export function defaultAuditKeyFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env[AUDIT_KEY_ENV]) return resolve(env[AUDIT_KEY_ENV]);
  const config = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(config, 'infra', 'audit-key.pem');
}

export interface VerifyKey {
  /** Short fingerprint of the public key, written into every record it signs. */
  id: string;
  publicKey: KeyObject;
}

export interface SigningKey extends VerifyKey {
  privateKey: KeyObject;
}

/** The signing key at `file`, created (0600, in a 0700 directory) when it does not exist yet. */
export function loadSigningKey(file: string = defaultAuditKeyFile()): SigningKey {
  let pem = readKeyFile(file);
  if (pem === undefined) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    try {
      writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another run created it first
    }
    pem = readKeyFile(file)!;
  }
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new UserError(`audit key ${file} is readable by others (mode ${mode.toString(8).padStart(4, '0')})`, { hint: `chmod 600 ${file}` });
  }
  const privateKey = parseKey(file, () => createPrivateKey(pem!));
  const publicKey = createPublicKey(privateKey);
  return { id: keyIdOf(publicKey), privateKey, publicKey };
}

/** A key that verifies records: a public key file, or the private key (its public half is used). */
export function loadVerifyKey(file: string): VerifyKey {
  const pem = readKeyFile(file);
  if (pem === undefined) {
    throw new UserError(`no audit key at ${file}`, {
      hint: 'pass --key FILE: the public key printed by `infra audit key` on the controller that wrote the records',
    });
  }
  const publicKey = parseKey(file, () => createPublicKey(pem));
  return { id: keyIdOf(publicKey), publicKey };
}

export function publicKeyPem(key: VerifyKey): string {
  return String(key.publicKey.export({ type: 'spki', format: 'pem' }));
}

export function signText(key: SigningKey, text: string): string {
  return sign(null, Buffer.from(text, 'utf8'), key.privateKey).toString('base64');
}

export function verifyText(key: VerifyKey, text: string, signature: string): boolean {
  try {
    return verify(null, Buffer.from(text, 'utf8'), key.publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

function readKeyFile(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read audit key ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function parseKey(file: string, parse: () => KeyObject): KeyObject {
  let key: KeyObject;
  try {
    key = parse();
  } catch {
    throw new UserError(`${file} is not a PEM key`, { hint: 'an audit key is an ed25519 key in PEM (infra creates one on first use)' });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new UserError(`${file} is a ${key.asymmetricKeyType} key, not ed25519`);
  return key;
}
