import { describe, it, expect } from 'vitest';
import { parse } from 'yaml';
import { UserError } from '../../../src/errors.js';
import { Keyring } from '../../../src/secrets/vault.js';
import { parseEnvelope } from '../../../src/secrets/envelope.js';
import { parseVarsFile, decryptText, encryptText, rekeyText, envelopesOf, yamlScalar } from '../../../src/cli/vault-file.js';
import { VAULT_TAGS } from '../../../src/yaml/positions.js';

const ring = () => new Keyring({ prod: 'prod-pw-123', lab: 'lab-pw-123' });
const plainYaml = (text: string) => parse(text, { customTags: VAULT_TAGS });

const SOURCE = `# vars for the database
db:
  user:   app          # odd spacing kept
  password: "s3cr3t-pass"
  port: 5432
list:
- first-item
- on
flow: {token: tok-123456, n: 1}
tls_key: |
  -----BEGIN KEY-----
  abcdef
  -----END KEY-----
last: tail-value
`;

describe('vars files with !vault values', () => {
  it('encrypts every string value, leaving every other byte of the file alone', () => {
    const r = encryptText(parseVarsFile(SOURCE, 'v.yaml'), ring(), { vaultId: 'prod' });
    expect(r.encrypted).toEqual(['db.user', 'db.password', 'list.0', 'flow.token', 'tls_key', 'last']);
    expect(r.skipped).toEqual([
      { keyPath: 'db.port', why: 'not a string' },
      { keyPath: 'list.1', why: 'shorter than 3 characters' },
      { keyPath: 'flow.n', why: 'not a string' },
    ]);
    const lines = r.text.split('\n');
    expect(lines[0]).toBe('# vars for the database');
    expect(lines[2]).toMatch(/^ {2}user: {3}!vault \$INFRA;1;prod;\S+ {10}# odd spacing kept$/);
    expect(lines[4]).toBe('  port: 5432');
    expect(lines[7]).toBe('- on');
    expect(lines[8]).toMatch(/^flow: \{token: !vault \S+, n: 1\}$/);
    expect(lines[9]).toMatch(/^tls_key: !vault \S+$/);
    expect(lines[10]).toMatch(/^last: !vault \S+$/);
    for (const s of ['app', 's3cr3t-pass', 'first-item', 'tok-123456', 'abcdef', 'tail-value']) expect(r.text).not.toContain(s);
    // One salt per vault id per file: a single key derivation decrypts it all.
    const salts = new Set(r.text.match(/\$INFRA[^\s,}]+/g)!.map((e) => e.split(';')[4]));
    expect(salts.size).toBe(1);
    const fresh = ring();
    const back = decryptText(parseVarsFile(r.text, 'v.yaml'), fresh, { mark: false });
    expect(fresh.derivations).toBe(1);
    expect(plainYaml(back.text)).toEqual(plainYaml(SOURCE));
  });

  it('decrypt for editing, then re-encrypt unchanged: the file is byte-identical (no git noise)', () => {
    const k = ring();
    const encrypted = encryptText(parseVarsFile(SOURCE, 'v.yaml'), k, { vaultId: 'prod' }).text;
    const before = parseVarsFile(encrypted, 'v.yaml');
    const buffer = decryptText(before, ring(), { mark: true }).text;
    expect(buffer).toContain('password: !encrypt "s3cr3t-pass"');
    expect(buffer).toContain('tls_key: !encrypt |\n  -----BEGIN KEY-----\n  abcdef\n  -----END KEY-----\nlast:');
    const again = encryptText(parseVarsFile(buffer, 'v.yaml'), ring(), { vaultId: 'prod', select: 'marked', previous: envelopesOf(before) });
    expect(again.text).toBe(encrypted);
    expect(again.kept).toHaveLength(6);

    // Change one value: only its line changes, and it stays under the same salt.
    const edited = buffer.replace('"s3cr3t-pass"', '"n3w-pass"');
    const changed = encryptText(parseVarsFile(edited, 'v.yaml'), ring(), { vaultId: 'prod', select: 'marked', previous: envelopesOf(before) });
    expect(changed.encrypted).toEqual(['db.password']);
    const diffLines = changed.text.split('\n').filter((l, i) => l !== encrypted.split('\n')[i]);
    expect(diffLines).toHaveLength(1);
    expect(diffLines[0]).toMatch(/^ {2}password: !vault /);
  });

  it('values moved between keys in the file fail to decrypt, naming file:line', () => {
    const k = ring();
    const text = encryptText(parseVarsFile('a: first-secret\nb: second-secret\n', 'm.yaml'), k, { vaultId: 'prod' }).text;
    const [la, lb] = text.trim().split('\n');
    const swapped = `a:${lb.slice(2)}\nb:${la.slice(2)}\n`;
    try {
      decryptText(parseVarsFile(swapped, 'm.yaml'), k, { mark: false });
      throw new Error('expected a failure');
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).format()).toMatch(/^m\.yaml:1:4: cannot decrypt a: wrong vault password for id 'prod'/);
      expect((e as UserError).format()).not.toMatch(/first-secret|second-secret/);
    }
  });

  it('only !encrypt-tagged values when some are tagged; --key paths when given', () => {
    const src = 'user: app-user\npassword: !encrypt hunter22\n';
    const r = encryptText(parseVarsFile(src, 'v.yaml'), ring(), { vaultId: 'lab' });
    expect(r.encrypted).toEqual(['password']);
    expect(r.text).toMatch(/^user: app-user\npassword: !vault \$INFRA;1;lab;\S+\n$/);
    const byKey = encryptText(parseVarsFile('a:\n  b: one-one\n  c: two-two\n', 'v.yaml'), ring(), { vaultId: 'lab', keys: ['a.c'] });
    expect(byKey.encrypted).toEqual(['a.c']);
    expect(byKey.text).toContain('  b: one-one\n');
    expect(() => encryptText(parseVarsFile('a:\n  b: one-one\n', 'v.yaml'), ring(), { vaultId: 'lab', keys: ['a.bb'] })).toThrow(
      /no scalar value at key path 'a.bb'/,
    );
  });

  it('rekey: every value re-encrypted under the new password, same ids', () => {
    const old = ring();
    const text = encryptText(parseVarsFile('a: first-secret\nb: !encrypt second-secret\n', 'v.yaml'), old, { vaultId: 'prod', select: 'auto' }).text;
    const fresh = new Keyring({ prod: 'brand-new-pw' });
    const r = rekeyText(parseVarsFile(text, 'v.yaml'), ring(), fresh);
    expect(r.keyPaths).toEqual(['b']);
    const out = decryptText(parseVarsFile(r.text, 'v.yaml'), new Keyring({ prod: 'brand-new-pw' }), { mark: false }).text;
    expect(plainYaml(out)).toEqual({ a: 'first-secret', b: 'second-secret' });
    expect(() => decryptText(parseVarsFile(r.text, 'v.yaml'), ring(), { mark: false })).toThrow(/cannot decrypt b/);
    expect(parseEnvelope(r.text.split('!vault ')[1].trim(), 'b').vaultId).toBe('prod');
  });

  it('plaintext renders as a YAML scalar that parses back to the same string', () => {
    for (const v of ['plain', 'with "quotes" and \\ and: colon', 'a\nb\n', 'a\nb', 'a\n\n\n', '  leading', 'tab\there', '#hash', '- dash']) {
      for (const indent of [2, undefined]) {
        const doc = `k: ${yamlScalar(v, undefined, indent)}\nnext: 1\n`;
        expect(parse(doc)).toEqual({ k: v, next: 1 });
      }
    }
  });

  it('reports YAML syntax errors with file:line', () => {
    expect(() => parseVarsFile('a: [1, 2\nb: 3\n', 'bad.yaml')).toThrow(UserError);
    try {
      parseVarsFile('a: b: c\n', 'bad.yaml');
    } catch (e) {
      expect((e as UserError).format()).toMatch(/^bad\.yaml:1:\d+: invalid YAML/);
    }
  });
});
