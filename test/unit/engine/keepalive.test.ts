/** ssh keepalive as an inventory connection setting: host > group > all, in seconds, bounded. */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory } from '../../../src/inventory/load.js';
import { UserError } from '../../../src/errors.js';

async function load(hostsYaml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'infra-keepalive-'));
  try {
    writeFileSync(join(dir, 'hosts.yaml'), hostsYaml);
    return await loadInventory(dir, { cwd: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('keepalive connection settings', () => {
  it('resolve per host like every connection key', async () => {
    const inv = await load(
      ['hosts:', '  a: { address: 10.0.0.1, groups: [edge] }', '  b: { address: 10.0.0.2, keepaliveInterval: 0.5 }', '  c: { address: 10.0.0.3 }',
        'groups:', '  all: { keepaliveInterval: 5, keepaliveCount: 2 }', '  edge: { keepaliveCount: 4 }', ''].join('\n'),
    );
    const conn = (h: string) => inv.hosts.get(h)!.conn;
    expect([conn('a').keepaliveIntervalMs, conn('a').keepaliveCountMax]).toEqual([5000, 4]);
    expect([conn('b').keepaliveIntervalMs, conn('b').keepaliveCountMax]).toEqual([500, 2]);
    expect([conn('c').keepaliveIntervalMs, conn('c').keepaliveCountMax]).toEqual([5000, 2]);
  });

  it('are absent (transport default 15 s × 3) unless set, and refused when out of range', async () => {
    const inv = await load('hosts:\n  a: { address: 10.0.0.1 }\n');
    expect(inv.hosts.get('a')!.conn.keepaliveIntervalMs).toBeUndefined();
    const err = await load('hosts:\n  a: { address: 10.0.0.1, keepaliveCount: 0 }\n').catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.format()).toMatch(/hosts\.yaml:2:\d+: .*keepaliveCount/);
  });
});
