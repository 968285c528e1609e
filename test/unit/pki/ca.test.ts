/** `infra pki init`'s files, and the CA key decrypted only when asked for, with the vault. */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CA_CERT_FILE, CA_KEY_FILE, initCa, loadCa } from '../../../src/pki/ca.js';
import { readCertificate } from '../../../src/pki/certificate.js';
import { Keyring, createDecryptor } from '../../../src/secrets/vault.js';
import type { VaultDecryptor } from '../../../src/secrets/types.js';
import { UserError } from '../../../src/errors.js';

let dir: string;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function newCa(password = 'pki test password') {
  dir = await mkdtemp(join(tmpdir(), 'infra-pki-'));
  const keyring = new Keyring({}, password);
  // encryptValue uses the default (slow) scrypt parameters; acceptable once per test.
  await initCa(dir, { commonName: 'infra unit CA', days: 10, keyring, vaultId: 'default' });
  return keyring;
}

/** A decryptor that counts its calls. */
function counting(keyring: Keyring): VaultDecryptor & { calls: number } {
  const inner = createDecryptor(keyring);
  const d = { calls: 0, decrypt: (...a: Parameters<VaultDecryptor['decrypt']>) => (d.calls++, inner.decrypt(...a)) };
  return d;
}

describe('initCa', () => {
  it('writes the certificate in clear and the key only as a vault value (0600)', async () => {
    await newCa();
    const crt = await readFile(join(dir, CA_CERT_FILE), 'utf8');
    expect(readCertificate(crt)?.x509.subject).toBe('CN=infra unit CA');
    const keyFile = await readFile(join(dir, CA_KEY_FILE), 'utf8');
    expect(keyFile).toMatch(/^ca_key: !vault \$INFRA;1;default;/m);
    expect(keyFile).not.toMatch(/PRIVATE KEY/);
    expect((await stat(join(dir, CA_KEY_FILE))).mode & 0o777).toBe(0o600);
  });

  it('refuses to replace an existing CA', async () => {
    const keyring = await newCa();
    const err = await initCa(dir, { commonName: 'again', days: 10, keyring, vaultId: 'default' }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(/already has a CA/);
  });

  it('writes nothing when there is no password for the vault id', async () => {
    dir = await mkdtemp(join(tmpdir(), 'infra-pki-'));
    const err = await initCa(dir, { commonName: 'x CA', days: 10, keyring: new Keyring(), vaultId: 'default' }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    await expect(stat(join(dir, 'pki'))).rejects.toThrow();
  });
});

describe('loadCa', () => {
  it('reads the certificate without decrypting the key; key() decrypts once and checks it belongs', async () => {
    const keyring = await newCa();
    const vault = counting(keyring);
    const ca = await loadCa({ dir, env: 'unit', vault });
    expect(ca.name).toBe('CN=infra unit CA');
    expect(vault.calls).toBe(0);
    const key = await ca.key();
    expect(key.reveal()).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(String(key)).toBe('********');
    await ca.key();
    expect(vault.calls).toBe(1);
  });

  it('a wrong vault password is an input error naming the key, not the value', async () => {
    await newCa();
    const ca = await loadCa({ dir, env: 'unit', vault: createDecryptor(new Keyring({}, 'wrong password')) });
    const err = await ca.key().catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(/cannot decrypt ca_key/);
  });

  it('an inventory without a CA says how to make one', async () => {
    dir = await mkdtemp(join(tmpdir(), 'infra-pki-'));
    const err = await loadCa({ dir, env: 'stage' }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.format()).toMatch(/infra pki init -i stage/);
  });

  it('refuses a key that belongs to another CA', async () => {
    const keyring = await newCa();
    const otherKey = await readFile(join(dir, CA_KEY_FILE), 'utf8');
    const first = dir;
    await newCa();
    await writeFile(join(dir, CA_KEY_FILE), otherKey);
    await rm(first, { recursive: true, force: true });
    const ca = await loadCa({ dir, env: 'unit', vault: createDecryptor(keyring) });
    await expect(ca.key()).rejects.toThrow(/does not belong/);
  });
});
