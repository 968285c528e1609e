/**
 * `infra vault encrypt/edit/rekey` must bind the same key path the loaders use when they
 * decrypt: hosts.yaml relative to `vars:` (or the connection key's name), playbooks relative
 * to a play's or role reference's `vars:`, vars files from the root. Proven by round trips:
 * encrypt with cli/vault-file, decrypt with the loaders' own parser and key path functions.
 */
import { describe, it, expect } from 'vitest';
import { parseDocument } from 'yaml';
import { UserError } from '../../../src/errors.js';
import { Keyring, createDecryptor } from '../../../src/secrets/vault.js';
import { isSecret } from '../../../src/secrets/secret.js';
import { parseYaml } from '../../../src/yaml/positions.js';
import { hostsFileKeyPath } from '../../../src/inventory/load.js';
import { playbookKeyPath } from '../../../src/playbook/load.js';
import { parseVarsFile, encryptText, decryptText, rekeyText, envelopesOf, vaultKeyPathsFor } from '../../../src/cli/vault-file.js';

const ring = () => new Keyring({ prod: 'prod-pw-123' });
const HOSTS = `hosts:
  db1:
    address: 10.0.0.1
    becomePassword: !encrypt become-pw-1
    vars:
      db:
        password: !encrypt db1-secret
  db2:
    address: 10.0.0.2
    vars:
      db:
        password: !encrypt db2-secret
groups:
  all:
    vars:
      api_token: !encrypt token-123456
`;
const PLAYBOOK = `- hosts: db
  vars:
    admin_password: !encrypt admin-pw-1
  roles:
    - name: postgres
      vars:
        replication: { password: !encrypt repl-pw-1 }
  tasks:
    - command.run: { cmd: "true" }
`;

/** Values as the loader sees them: decrypted with the loader's key path function. */
function loaded(text: string, file: string, keyPath: (p: ReadonlyArray<string | number>) => string | undefined) {
  const doc = parseYaml(text, file, { decryptor: createDecryptor(ring()), vaultKeyPath: keyPath });
  expect(doc.errors.map((e) => e.message)).toEqual([]);
  return doc.value as Record<string, any>;
}
const plain = (v: unknown) => (isSecret(v) ? v.reveal() : v);

describe('vault key paths match the loaders', () => {
  it('detects the file kind by name and shape', () => {
    expect(vaultKeyPathsFor('inventories/prod/hosts.yaml', null)).toBe(hostsFileKeyPath);
    expect(vaultKeyPathsFor('/x/hosts.yml', null)).toBe(hostsFileKeyPath);
    expect(vaultKeyPathsFor('playbooks/site.yaml', parseVarsFileRoot(PLAYBOOK))).toBe(playbookKeyPath);
    expect(vaultKeyPathsFor('group_vars/all.yaml', parseVarsFileRoot('a: 1\n'))('a.b'.split('.'))).toBe('a.b');
    expect(vaultKeyPathsFor('group_vars/myhosts.yaml', parseVarsFileRoot('a: 1\n'))(['a'])).toBe('a');
  });

  it('hosts.yaml: encrypted values decrypt through the inventory loader (vars-relative, connection keys by name)', () => {
    const f = parseVarsFile(HOSTS, 'inv/hosts.yaml');
    expect(f.leaves.filter((l) => l.keyPath !== undefined).map((l) => [l.path, l.keyPath])).toEqual([
      ['hosts.db1.becomePassword', 'becomePassword'],
      ['hosts.db1.vars.db.password', 'db.password'],
      ['hosts.db2.vars.db.password', 'db.password'],
      ['groups.all.vars.api_token', 'api_token'],
    ]);
    const r = encryptText(f, ring(), { vaultId: 'prod' });
    expect(r.encrypted).toEqual(['hosts.db1.becomePassword', 'hosts.db1.vars.db.password', 'hosts.db2.vars.db.password', 'groups.all.vars.api_token']);
    const v = loaded(r.text, 'inv/hosts.yaml', hostsFileKeyPath);
    expect(plain(v.hosts.db1.becomePassword)).toBe('become-pw-1');
    expect(plain(v.hosts.db1.vars.db.password)).toBe('db1-secret');
    expect(plain(v.hosts.db2.vars.db.password)).toBe('db2-secret');
    expect(plain(v.groups.all.vars.api_token)).toBe('token-123456');
    expect(v.hosts.db1.address).toBe('10.0.0.1');
  });

  it('hosts.yaml: "encrypt every string" skips what is no secret (addresses), and --key takes either path', () => {
    const text = HOSTS.replaceAll('!encrypt ', '');
    const all = encryptText(parseVarsFile(text, 'hosts.yaml'), ring(), { vaultId: 'prod' });
    expect(all.encrypted).toHaveLength(4);
    expect(all.text).toContain('address: 10.0.0.1');
    const byKeyPath = encryptText(parseVarsFile(text, 'hosts.yaml'), ring(), { vaultId: 'prod', keys: ['db.password'] });
    expect(byKeyPath.encrypted).toEqual(['hosts.db1.vars.db.password', 'hosts.db2.vars.db.password']);
    const byPath = encryptText(parseVarsFile(text, 'hosts.yaml'), ring(), { vaultId: 'prod', keys: ['hosts.db2.vars.db.password'] });
    expect(byPath.encrypted).toEqual(['hosts.db2.vars.db.password']);
    expect(() => encryptText(parseVarsFile(text, 'hosts.yaml'), ring(), { vaultId: 'prod', keys: ['hosts.db1.address'] })).toThrow(/not allowed here/);
  });

  it('a value marked where the loader allows no vault value is refused with its position', () => {
    const bad = 'hosts:\n  web1:\n    address: !encrypt 10.0.0.9\n';
    try {
      encryptText(parseVarsFile(bad, 'hosts.yaml'), ring(), { vaultId: 'prod' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).format()).toMatch(/hosts\.yaml:3:14.*hosts\.web1\.address: a vault value is not allowed here/s);
    }
  });

  it('playbooks: play vars and role-reference vars decrypt through the playbook loader', () => {
    const r = encryptText(parseVarsFile(PLAYBOOK, 'site.yaml'), ring(), { vaultId: 'prod' });
    expect(r.encrypted).toEqual(['0.vars.admin_password', '0.roles.0.vars.replication.password']);
    const v = loaded(r.text, 'site.yaml', playbookKeyPath) as unknown as Array<Record<string, any>>;
    expect(plain(v[0].vars.admin_password)).toBe('admin-pw-1');
    expect(plain(v[0].roles[0].vars.replication.password)).toBe('repl-pw-1');
    // "every string" leaves tasks alone.
    const all = encryptText(parseVarsFile(PLAYBOOK.replaceAll('!encrypt ', ''), 'site.yaml'), ring(), { vaultId: 'prod' });
    expect(all.text).toContain('cmd: "true"');
    expect(all.text).toContain('- hosts: db');
  });

  it('decrypt, edit (unchanged values keep their ciphertext) and rekey use the same key paths', () => {
    const enc = encryptText(parseVarsFile(HOSTS, 'hosts.yaml'), ring(), { vaultId: 'prod' }).text;
    const before = parseVarsFile(enc, 'hosts.yaml');
    const shown = decryptText(before, ring(), { mark: true }).text;
    expect(shown).toContain('password: !encrypt "db2-secret"');
    // Same plaintext in both hosts' db.password would be fine; here they differ: each keeps its own envelope.
    const again = encryptText(parseVarsFile(shown, 'hosts.yaml'), ring(), { vaultId: 'prod', select: 'marked', previous: envelopesOf(before) });
    expect(again.text).toBe(enc);
    expect(again.kept).toHaveLength(4);
    const newRing = new Keyring({ prod: 'new-pw-456' });
    const rekeyed = rekeyText(before, ring(), newRing).text;
    const doc = parseYaml(rekeyed, 'hosts.yaml', { decryptor: createDecryptor(newRing), vaultKeyPath: hostsFileKeyPath });
    expect(doc.errors).toEqual([]);
    expect(plain((doc.value as any).hosts.db2.vars.db.password)).toBe('db2-secret');
  });

  it('group_vars files keep whole-path key paths', () => {
    const r = encryptText(parseVarsFile('db:\n  password: !encrypt pw-123456\n', 'group_vars/all.yaml'), ring(), { vaultId: 'prod' });
    const doc = parseYaml(r.text, 'group_vars/all.yaml', { decryptor: createDecryptor(ring()) });
    expect(doc.errors).toEqual([]);
    expect(plain((doc.value as any).db.password)).toBe('pw-123456');
  });
});

/** The yaml Document's contents, as parseVarsFile sees them. */
function parseVarsFileRoot(text: string): unknown {
  return parseDocument(text).contents;
}
