import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkHostKey,
  fingerprint,
  hostKeyName,
  KnownHosts,
  parseKnownHosts,
  patternsMatch,
} from '../../../src/transport/known-hosts.js';

/** An ssh-ed25519 wire-format public key blob. */
function edBlob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const len = (b: Buffer): Buffer => {
    const l = Buffer.alloc(4);
    l.writeUInt32BE(b.length);
    return Buffer.concat([l, b]);
  };
  return Buffer.concat([len(Buffer.from('ssh-ed25519')), len(raw)]);
}
const line = (hosts: string, blob: Buffer): string => `${hosts} ssh-ed25519 ${blob.toString('base64')}`;
function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

const k1 = edBlob();
const k2 = edBlob();

describe('known_hosts', () => {
  it('names non-22 ports in brackets', () => {
    expect(hostKeyName('10.0.0.1', 22)).toBe('10.0.0.1');
    expect(hostKeyName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
  });

  const cases: { name: string; file: string; host: string; key: Buffer; status: string }[] = [
    { name: 'plain match', file: line('10.0.0.1', k1), host: '10.0.0.1', key: k1, status: 'ok' },
    { name: 'comma list', file: line('db1,10.0.0.1', k1), host: '10.0.0.1', key: k1, status: 'ok' },
    { name: 'port form', file: line('[127.0.0.1]:2222', k1), host: '[127.0.0.1]:2222', key: k1, status: 'ok' },
    { name: 'port form does not match port 22', file: line('[127.0.0.1]:2222', k1), host: '127.0.0.1', key: k1, status: 'unknown' },
    { name: 'hashed entry', file: line(hashed('[10.0.0.5]:22022'), k1), host: '[10.0.0.5]:22022', key: k1, status: 'ok' },
    { name: 'hashed entry, other host', file: line(hashed('10.0.0.5'), k1), host: '10.0.0.6', key: k1, status: 'unknown' },
    { name: 'changed key', file: line('10.0.0.1', k1), host: '10.0.0.1', key: k2, status: 'changed' },
    { name: 'changed key, hashed', file: line(hashed('10.0.0.1'), k1), host: '10.0.0.1', key: k2, status: 'changed' },
    { name: 'wildcard', file: line('10.0.0.*', k1), host: '10.0.0.9', key: k1, status: 'ok' },
    { name: 'negation wins', file: line('10.0.0.*,!10.0.0.9', k1), host: '10.0.0.9', key: k1, status: 'unknown' },
    { name: 'comments and blanks', file: `# c\n\n  ${line('h', k1)}\n`, host: 'h', key: k1, status: 'ok' },
    { name: '@revoked beats a match', file: `${line('h', k1)}\n@revoked * ssh-ed25519 ${k1.toString('base64')}`, host: 'h', key: k1, status: 'revoked' },
    { name: 'no entry', file: '', host: 'h', key: k1, status: 'unknown' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(checkHostKey(parseKnownHosts(c.file), c.host, c.key).status).toBe(c.status);
    });
  }

  it('a key of another type on record is a change, not unknown', () => {
    const file = `h ssh-rsa ${Buffer.from('not-a-real-rsa-key').toString('base64')}`;
    expect(checkHostKey(parseKnownHosts(file), 'h', k1)).toMatchObject({ status: 'changed', knownType: 'ssh-rsa' });
  });

  it('negation patterns alone never match', () => {
    expect(patternsMatch(['!h'], 'x')).toBe(false);
  });

  it('fingerprint is SHA256 base64 without padding', () => {
    expect(fingerprint(k1)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('add() appends a line that checks ok afterwards (and adds a missing newline)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kh-'));
    const path = join(dir, 'known_hosts');
    await writeFile(path, line('other', k2)); // no trailing newline
    const kh = new KnownHosts(path);
    await Promise.all([kh.add('[127.0.0.1]:2200', k1), kh.add('10.1.1.1', k2)]);
    const text = await readFile(path, 'utf8');
    expect(text.split('\n').filter(Boolean)).toHaveLength(3);
    const fresh = parseKnownHosts(text);
    expect(checkHostKey(fresh, '[127.0.0.1]:2200', k1).status).toBe('ok');
    expect(checkHostKey(await kh.entries(), '10.1.1.1', k2).status).toBe('ok');
  });
});
