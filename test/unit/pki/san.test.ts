import { describe, expect, it } from 'vitest';
import { formatSan, parseSan, sanDifference, sanSet, sansOfCertificate } from '../../../src/pki/san.js';

describe('subject alternative names', () => {
  it.each([
    ['db1', 'DNS:db1'],
    ['DB1.Example.COM.', 'DNS:db1.example.com'],
    ['*.api.internal', 'DNS:*.api.internal'],
    ['10.0.0.5', 'IP:10.0.0.5'],
    ['FD00:0:0::1', 'IP:fd00::1'],
    ['[fd00::1]', 'IP:fd00::1'],
    ['IP:10.0.0.5', 'IP:10.0.0.5'],
    ['DNS:db_1', 'DNS:db_1'],
  ])('%s → %s', (text, want) => {
    expect(formatSan(parseSan(text)!)).toBe(want);
  });

  it.each(['', 'a b', 'db1\n[leaf]\nbasicConstraints=CA:TRUE', 'db1,IP:1.2.3.4', 'IP:db1', '-db', 'a..b', 'x'.repeat(64)])(
    'refuses %j (it would reach the signing configuration)',
    (text) => {
      expect(parseSan(text)).toBeUndefined();
    },
  );

  it('reads what node prints for a certificate, and compares sets in both directions', () => {
    const have = sansOfCertificate('DNS:db1, IP Address:FD00:0:0:0:0:0:0:1, IP Address:10.0.0.5');
    expect(have.map(formatSan)).toEqual(['DNS:db1', 'IP:10.0.0.5', 'IP:fd00::1']);
    const want = sanSet([parseSan('db1')!, parseSan('10.0.0.6')!, parseSan('fd00::1')!, parseSan('db1')!]);
    expect(sanDifference(have, want)).toBe('+IP:10.0.0.6 -IP:10.0.0.5');
    expect(sanDifference(have, have)).toBe('');
  });
});
