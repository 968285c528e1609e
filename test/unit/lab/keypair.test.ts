import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, writeKeyPair } from '../../../src/lab/keypair.js';

const hasSshKeygen = spawnSync('ssh-keygen', ['-?']).error === undefined;
const rawPublic = (publicKey: string): Buffer => Buffer.from(publicKey.split(' ')[1], 'base64').subarray(19);

describe('generateKeyPair', () => {
  it('every key parses, including those whose public key starts with a zero byte (ssh2 generated those malformed)', () => {
    // Until two zero-led keys were seen (one in 256 on average), bounded.
    let zeroLed = 0;
    for (let i = 0; (i < 500 || zeroLed < 2) && i < 20_000; i++) {
      const pair = generateKeyPair(`k${i}`);
      const parsed = ssh2.utils.parseKey(pair.privateKey);
      if (parsed instanceof Error) throw new Error(`key ${i}: ${parsed.message}\n${pair.privateKey}`);
      expect(rawPublic(pair.publicKey)).toHaveLength(32);
      expect(parsed.getPublicSSH().toString('base64')).toBe(pair.publicKey.split(' ')[1]);
      const data = Buffer.from('challenge');
      expect(parsed.verify(data, parsed.sign(data))).toBe(true);
      if (rawPublic(pair.publicKey)[0] === 0) zeroLed++;
    }
    expect(zeroLed).toBeGreaterThanOrEqual(2);
  });

  // OpenSSH's client is not part of what CI installs; where it is present, it is the judge.
  it.skipIf(!hasSshKeygen)('OpenSSH reads the private key file and derives the same public key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keypair-'));
    try {
      const pair = generateKeyPair('infra-test@host');
      await writeKeyPair(join(dir, 'id'), pair);
      expect(execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'id')], { encoding: 'utf8' }).trim()).toBe(pair.publicKey);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
