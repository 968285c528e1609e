import { describe, it, expect } from 'vitest';
import { parseYaml } from '../../../src/yaml/positions.js';
import { UserError } from '../../../src/errors.js';
import { Secret } from '../../../src/secrets/secret.js';
import type { VaultDecryptor } from '../../../src/secrets/types.js';

/** Decrypts "plain:<text>" and records the key paths it was asked for. */
function recordingDecryptor(): VaultDecryptor & { keyPaths: string[] } {
  const keyPaths: string[] = [];
  return {
    keyPaths,
    decrypt(envelope, keyPath, pos) {
      keyPaths.push(keyPath);
      if (!envelope.startsWith('plain:')) throw new UserError(`cannot decrypt ${keyPath}`, { pos });
      return new Secret(envelope.slice(6), keyPath);
    },
  };
}

describe('parseYaml positions', () => {
  const text = ['hosts:', '  db1:', '    address: 10.0.0.1', '    groups: [a, b]', 'list:', '  - x', '  - {k: v}', ''].join('\n');
  const doc = parseYaml(text, 'hosts.yaml');

  it('converts to plain values', () => {
    expect(doc.errors).toEqual([]);
    expect(doc.value).toEqual({ hosts: { db1: { address: '10.0.0.1', groups: ['a', 'b'] } }, list: ['x', { k: 'v' }] });
  });

  it.each([
    [['hosts', 'db1', 'address'], 'value', 3, 14],
    [['hosts', 'db1', 'address'], 'key', 3, 5],
    [['hosts', 'db1', 'groups', 1], 'value', 4, 17],
    [['list', 1, 'k'], 'value', 7, 9],
    [['hosts', 'db1', 'nothere'], 'value', 3, 5], // nearest ancestor: the db1 mapping
  ] as const)('%j (%s) is at %i:%i', (path, which, line, col) => {
    const p = which === 'key' ? doc.keyPos(path) : doc.pos(path);
    expect(p).toEqual({ file: 'hosts.yaml', line, col });
  });
});

describe('parseYaml errors', () => {
  it.each([
    ['malformed YAML', 'a: [1, 2\nb: 3\n', /invalid YAML/, 2],
    ['duplicate key', 'a: 1\nb: 2\na: 3\n', /invalid YAML: Map keys must be unique/, 3],
    ['bad indentation', 'a:\n  b: 1\n c: 2\n', /invalid YAML/, 3],
    ['unknown tag', 'a: !secret x\n', /invalid YAML: .*!secret/, 1],
  ])('%s → error with line', (_name, text, message, line) => {
    const doc = parseYaml(text, 'f.yaml');
    expect(doc.value).toBeUndefined();
    expect(doc.errors.length).toBeGreaterThan(0);
    expect(doc.errors[0].message).toMatch(message);
    expect(doc.errors[0].pos).toMatchObject({ file: 'f.yaml', line });
    expect(doc.errors[0].format()).toMatch(new RegExp(`^f\\.yaml:${line}:\\d+: `));
  });
});

describe('!vault values', () => {
  it('decrypts in place with the dotted key path', () => {
    const d = recordingDecryptor();
    const doc = parseYaml('db:\n  password: !vault plain:s3cret\nlist:\n  - !vault plain:abc\n', 'g.yaml', { decryptor: d });
    expect(doc.errors).toEqual([]);
    const v = doc.value as { db: { password: Secret }; list: Secret[] };
    expect(v.db.password).toBeInstanceOf(Secret);
    expect(v.db.password.reveal()).toBe('s3cret');
    expect(v.list[0].reveal()).toBe('abc');
    expect(d.keyPaths).toEqual(['db.password', 'list.0']);
  });

  it('uses the caller key path function', () => {
    const d = recordingDecryptor();
    parseYaml('hosts:\n  h:\n    vars:\n      x: !vault plain:val\n', 'h.yaml', {
      decryptor: d,
      vaultKeyPath: (p) => (p[2] === 'vars' ? p.slice(3).join('.') : undefined),
    });
    expect(d.keyPaths).toEqual(['x']);
  });

  it.each([
    ['no decryptor', 'a: !vault plain:x\n', undefined, /no vault password given/, /--vault-password-file.*INFRA_VAULT_PASSWORD_FILE/],
    ['not allowed here', 'a: !vault plain:x\n', () => undefined, /not allowed here/, /vars/],
    ['decrypt failure', 'a: !vault garbage\n', undefined, /cannot decrypt a/, undefined],
    ['still !encrypt', 'a: !encrypt hunter2\n', undefined, /still in clear/, /infra vault encrypt/],
  ] as const)('%s → error at file:line', (name, text, keyPath, message, hint) => {
    const decryptor = name === 'no decryptor' ? undefined : recordingDecryptor();
    const doc = parseYaml(text, 'v.yaml', { decryptor, vaultKeyPath: keyPath });
    expect(doc.errors).toHaveLength(1);
    expect(doc.errors[0].message).toMatch(name === 'decrypt failure' ? /cannot decrypt a/ : message);
    expect(doc.errors[0].pos).toMatchObject({ file: 'v.yaml', line: 1, col: 4 });
    if (hint) expect(doc.errors[0].hint).toMatch(hint);
  });
});
