import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../../src/errors.js';
import { encryptValue, decryptValue, createDecryptor, Keyring, DEFAULT_SCRYPT } from '../../../src/secrets/vault.js';
import { parseEnvelope, vaultIdsIn } from '../../../src/secrets/envelope.js';
import { redact } from '../../../src/secrets/secret.js';

// Fast parameters for most tests; one test uses the defaults.
const fast = { params: { N: 1024, r: 8, p: 1 } };
const ring = () => new Keyring({ prod: 'prod-password-1', lab: 'lab-password-1' });
const plain = 'canary-Q9x7-secret';

function failure(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

function flipLastByte(envelope: string): string {
  const fields = envelope.split(';');
  const sealed = Buffer.from(fields[6], 'base64');
  sealed[sealed.length - 1] ^= 1;
  fields[6] = sealed.toString('base64');
  return fields.join(';');
}

describe('vault values', () => {
  it('round-trips with the default scrypt parameters, one line, header as documented', () => {
    const k = ring();
    const env = encryptValue(plain, 'db.password', k, 'prod');
    expect(env).toMatch(/^\$INFRA;1;prod;scrypt:N=32768:r=8:p=1;[A-Za-z0-9+/=]+;[A-Za-z0-9+/=]+;[A-Za-z0-9+/=]+$/);
    expect(env).not.toContain(plain);
    const s = decryptValue(env, 'db.password', k);
    expect(s.reveal()).toBe(plain);
    expect(String(s)).toBe('********');
    expect(parseEnvelope(env, 'x').params).toEqual(DEFAULT_SCRYPT);
  });

  it('reads the scrypt parameters from the header', () => {
    const k = ring();
    const env = encryptValue(plain, 'a.b', k, 'lab', undefined, { params: { N: 2048, r: 4, p: 2 } });
    expect(env.split(';')[3]).toBe('scrypt:N=2048:r=4:p=2');
    // A fresh keyring has no cached key: it must derive with the header's parameters to succeed.
    const fresh = ring();
    expect(decryptValue(env, 'a.b', fresh).reveal()).toBe(plain);
    expect(fresh.derivations).toBe(1);
  });

  it('fails on tampered ciphertext without showing the plaintext', () => {
    const k = ring();
    const env = encryptValue(plain, 'db.password', k, 'prod', undefined, fast);
    const e = failure(() => decryptValue(flipLastByte(env), 'db.password', k, { file: 'group_vars/all.yaml', line: 3, col: 14 }));
    expect(e.format()).toContain("group_vars/all.yaml:3:14: cannot decrypt db.password: wrong vault password for id 'prod', or the value was altered or moved from another key");
    expect(e.format()).not.toContain(plain);
  });

  it('fails on a wrong password', () => {
    const env = encryptValue(plain, 'db.password', ring(), 'prod', undefined, fast);
    const e = failure(() => decryptValue(env, 'db.password', new Keyring({ prod: 'not-the-password' })));
    expect(e.message).toContain("wrong vault password for id 'prod'");
    expect(e.hint).toContain('--vault-password-file');
  });

  it('fails when the value is moved to another key path', () => {
    const k = ring();
    const env = encryptValue(plain, 'db.password', k, 'prod', undefined, fast);
    const e = failure(() => decryptValue(env, 'redis.password', k));
    expect(e.message).toContain('cannot decrypt redis.password');
    expect(e.message).not.toContain(plain);
  });

  it('fails when the vault id in the header is changed, and names a missing id', () => {
    const k = ring();
    const env = encryptValue(plain, 'db.password', k, 'prod', undefined, fast);
    // Same password for both ids: only the authenticated header can tell them apart.
    const same = new Keyring({ prod: 'x-password', lab: 'x-password' });
    const underProd = encryptValue(plain, 'db.password', same, 'prod', undefined, fast);
    expect(() => decryptValue(underProd.replace(';prod;', ';lab;'), 'db.password', same)).toThrow(/cannot decrypt db.password: wrong vault password for id 'lab'/);
    const missing = failure(() => decryptValue(env, 'db.password', new Keyring({ lab: 'lab-password-1' })));
    expect(missing.message).toBe("no vault password for id 'prod' (needed for db.password)");
    expect(missing.hint).toContain('prod@FILE');
  });

  it('fails when scrypt parameters in the header are edited or out of bounds', () => {
    const k = ring();
    const env = encryptValue(plain, 'k', k, 'prod', undefined, { params: { N: 2048, r: 8, p: 1 } });
    expect(() => decryptValue(env.replace('N=2048', 'N=4096'), 'k', k)).toThrow(/cannot decrypt k/);
    expect(() => decryptValue(env.replace('N=2048', 'N=1073741824'), 'k', k)).toThrow(/malformed vault value at k: .*power of two/);
    expect(() => decryptValue(env.replace('N=2048', 'N=3000'), 'k', k)).toThrow(/power of two/);
  });

  it('rejects malformed envelopes with a hint', () => {
    const k = ring();
    expect(() => decryptValue('hello', 'k', k)).toThrow(/malformed vault value at k: it does not start with \$INFRA/);
    expect(() => decryptValue('$INFRA;2;prod;x;y;z;w', 'k', k)).toThrow(/unsupported format version '2'/);
    const env = encryptValue(plain, 'k', k, 'prod', undefined, fast);
    expect(() => decryptValue(env.slice(0, env.lastIndexOf(';')), 'k', k)).toThrow(/expected 7/);
    expect(() => decryptValue(env.replace(/;([^;]+)$/, ';@@@@'), 'k', k)).toThrow(/ciphertext is not base64/);
  });

  it('keeps the ciphertext of an unchanged value, and re-encrypts a changed one', () => {
    const k = ring();
    const first = encryptValue(plain, 'db.password', k, 'prod', undefined, fast);
    expect(encryptValue(plain, 'db.password', k, 'prod', first, fast)).toBe(first);
    // A second encryption of the same value without `previous` differs (random IV).
    expect(encryptValue(plain, 'db.password', k, 'prod', undefined, fast)).not.toBe(first);
    const changed = encryptValue(plain + '!', 'db.password', k, 'prod', first, fast);
    expect(changed).not.toBe(first);
    // Same plaintext under another key path or another id is a new value.
    expect(encryptValue(plain, 'other.password', k, 'prod', first, fast)).not.toBe(first);
    expect(encryptValue(plain, 'db.password', k, 'lab', first, fast)).not.toBe(first);
    // After a password change (rekey) the old envelope no longer counts as unchanged.
    expect(encryptValue(plain, 'db.password', new Keyring({ prod: 'new-password' }), 'prod', first, fast)).not.toBe(first);
  });

  it('derives a key once per (id, salt, parameters) in a keyring', () => {
    const k = ring();
    const values = ['one-value', 'two-value', 'three-value'].map((v, i) => encryptValue(v, `k${i}`, k, 'prod', undefined, fast));
    expect(k.derivations).toBe(1);
    const fresh = ring();
    values.forEach((v, i) => decryptValue(v, `k${i}`, fresh));
    expect(fresh.derivations).toBe(1);
  });

  it('refuses to encrypt values shorter than 3 characters', () => {
    const e = failure(() => encryptValue('ab', 'flag', ring(), 'prod', undefined, fast));
    expect(e.message).toContain('refusing to encrypt flag');
  });

  it('the decryptor registers the value with the redactor', () => {
    const d = createDecryptor(ring());
    const secret = 'registered-' + Math.random().toString(36).slice(2);
    const env = encryptValue(secret, 'x.y', ring(), 'prod', undefined, fast);
    expect(redact(`password=${secret}`)).toContain(secret); // not known before decryption
    d.decrypt(env, 'x.y');
    expect(redact(`password=${secret}`)).toBe('password=********');
  });

  it('lists the vault ids a text needs', () => {
    const k = ring();
    const text = `a: !vault ${encryptValue(plain, 'a', k, 'prod', undefined, fast)}\nb: !vault ${encryptValue(plain, 'b', k, 'lab', undefined, fast)}\n`;
    expect(vaultIdsIn(text).sort()).toEqual(['lab', 'prod']);
  });
});

describe('Keyring sources', () => {
  const dir = mkdtempSync(join(tmpdir(), 'infra-keyring-'));
  const file = (name: string, content: string) => {
    const p = join(dir, name);
    writeFileSync(p, content, { mode: 0o600 });
    return p;
  };

  it('reads FILE as the fallback for every id, trimming the trailing newline', async () => {
    const f = file('pw', 'file-password\n');
    const k = await Keyring.fromSources({ passwordFile: f, env: {} });
    const env = encryptValue(plain, 'a', new Keyring({ prod: 'file-password' }), 'prod', undefined, fast);
    expect(decryptValue(env, 'a', k).reveal()).toBe(plain);
    expect(k.has('anything')).toBe(true);
    expect(redact('file-password')).toBe('********');
  });

  it('reads id@FILE lists, from the option and from INFRA_VAULT_PASSWORD_FILE, the option winning per id', async () => {
    const p1 = file('prod1', 'prod-from-option');
    const p2 = file('prod2', 'prod-from-env');
    const l = file('lab', 'lab-from-env');
    const k = await Keyring.fromSources({ passwordFile: `prod@${p1}`, env: { INFRA_VAULT_PASSWORD_FILE: `prod@${p2},lab@${l}` } });
    expect(k.ids().sort()).toEqual(['lab', 'prod']);
    expect(k.has('other')).toBe(false);
    const env = encryptValue(plain, 'a', new Keyring({ prod: 'prod-from-option' }), 'prod', undefined, fast);
    expect(decryptValue(env, 'a', k).reveal()).toBe(plain);
  });

  it('names a missing or empty password file', async () => {
    await expect(Keyring.fromSources({ passwordFile: join(dir, 'nope'), env: {} })).rejects.toThrow(/cannot read vault password file .*nope: ENOENT/);
    await expect(Keyring.fromSources({ passwordFile: file('empty', '\n'), env: {} })).rejects.toThrow(/empty vault password/);
  });

  it('prompts only for the ids no file covers', async () => {
    const asked: string[] = [];
    const prompt = async (id: string) => (asked.push(id), `${id}-typed-password`);
    const k = await Keyring.fromSources({ passwordFile: `prod@${file('p', 'prod-pw')}`, env: {}, prompt, ids: ['prod', 'lab'] });
    expect(asked).toEqual(['lab']);
    expect(k.ids().sort()).toEqual(['lab', 'prod']);
    const asked2: string[] = [];
    await Keyring.fromSources({ env: {}, prompt: async (id) => (asked2.push(id), 'typed-pw') });
    expect(asked2).toEqual(['default']);
  });
});
