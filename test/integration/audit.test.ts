/**
 * The audit trail end to end (issue 10, item 16): real runs sign their records, the hosts they
 * touched keep the same lines, and `infra audit verify --against-hosts` finds a controller file
 * cut short, a record rewritten by someone holding the key, and a record removed on a host.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFleet, type Fleet } from './fleet.js';
import { infra, type CliResult } from './helpers/cli.js';
import { loadSigningKey, sealRecord, type AuditRecord, type ChainHead } from '../../src/audit/index.js';

let fleet: Fleet;
let work: string;
let env: Record<string, string>;
let auditFile: string;
let original: string;

const output = (r: CliResult): string => r.stdout + r.stderr;
const verify = (...args: string[]) => infra(['audit', 'verify', auditFile, '--against-hosts', '-i', fleet.inventoryDir, ...args], { env });
const hostLines = async (host: string) => (await fleet.exec(host, 'cat /var/log/infra/audit.jsonl')).stdout.trim().split('\n');

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'infra-audit-it-'));
  env = { XDG_STATE_HOME: join(work, 'state'), INFRA_AUDIT_KEY: join(work, 'config', 'audit-key.pem') };
  auditFile = join(work, 'state', 'infra', 'audit.jsonl');
  fleet = await startFleet({ targets: 2 }).catch(() => startFleet({ targets: 2 }));
  const playbook = join(work, 'site.yaml');
  await writeFile(playbook, '- hosts: targets\n  tasks:\n    - files.file: { path: /etc/infra-audit-test, content: "{{ vars.marker }}\\n" }\n');
  // seq 1 changes both targets, seq 2 only target1, seq 3 (exec) runs on both.
  const inv = ['-i', fleet.inventoryDir, '--json'];
  for (const args of [
    ['apply', playbook, ...inv, '-e', 'marker=one'],
    ['apply', playbook, ...inv, '-e', 'marker=two', '-l', 'target1'],
    ['exec', ...inv, '-l', 'targets', '--', 'true'],
  ]) {
    const r = await infra(args, { env });
    expect(r.code, output(r)).toBe(0);
  }
  original = await readFile(auditFile, 'utf8');
}, 300_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('infra audit verify --against-hosts', () => {
  it('the hosts hold the very lines the controller signed, and all agree', async () => {
    const lines = original.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(await hostLines('target1')).toEqual(lines);
    expect(await hostLines('target2')).toEqual([lines[0], lines[2]]);
    const r = await verify();
    expect(r.code, output(r)).toBe(0);
    expect(r.stdout).toContain(`${auditFile}: ok, 3 record(s), chain intact, head seq 3\n`);
    expect(r.stdout).toContain("target1: ok, 3 run(s) match the controller's (its head: seq 3)\n");
    expect(r.stdout).toContain("target2: ok, 2 run(s) match the controller's (its head: seq 3)\n");
    expect(r.stdout).toContain("bastion: ok, 0 run(s) match the controller's\n");
  }, 60_000);

  it('a tail cut from the controller file verifies on its own, but not against the hosts', async () => {
    const lines = original.trim().split('\n');
    await writeFile(auditFile, lines.slice(0, 2).join('\n') + '\n');
    try {
      const local = await infra(['audit', 'verify', auditFile], { env });
      expect(local.code, output(local)).toBe(0);
      const r = await verify('-l', 'targets');
      expect(r.code, output(r)).toBe(1);
      for (const host of ['target1', 'target2']) {
        expect(r.stdout).toMatch(new RegExp(`${host}: 1 problem\\(s\\)[^\\n]*\\n  - run \\S+ \\(seq 3, [^)]*\\) is on ${host}, but the controller's file ends at seq 2: records were cut from its end`));
      }
    } finally {
      await writeFile(auditFile, original);
    }
  }, 60_000);

  it('a record rewritten and the chain re-signed with the key: the hosts still hold the originals', async () => {
    const key = loadSigningKey(env.INFRA_AUDIT_KEY);
    let head: ChainHead | null = null;
    const forged = original
      .trim()
      .split('\n')
      .map((l) => {
        const { seq: _s, prev: _p, key: _k, sig: _g, ...draft } = JSON.parse(l) as AuditRecord;
        const sealed = sealRecord(draft.command.includes('marker=two') ? { ...draft, command: 'infra apply --check' } : draft, head, key);
        head = { seq: sealed.record.seq, sig: sealed.record.sig };
        return sealed.line;
      });
    await writeFile(auditFile, forged.join('\n') + '\n');
    try {
      const local = await infra(['audit', 'verify', auditFile], { env });
      expect(local.code, output(local)).toBe(0); // whoever holds the key can fool the file alone
      const r = await verify('-l', 'targets');
      expect(r.code, output(r)).toBe(1);
      expect(r.stdout).toMatch(/target1: 2 problem\(s\), 1 run\(s\) match[^\n]*\n  - run \S+ \(seq 2, [^)]*\): the controller's copy differs from target1's: one of them was rewritten/);
      expect(r.stdout).toMatch(/target2: 1 problem\(s\), 1 run\(s\) match[^\n]*\n  - run \S+ \(seq 3, [^)]*\): the controller's copy differs from target2's/);
    } finally {
      await writeFile(auditFile, original);
    }
  }, 60_000);

  it('a record removed on a host, and a wrong key, are both failures', async () => {
    await fleet.exec('target1', "sed -i '2d' /var/log/infra/audit.jsonl");
    const r = await verify('-l', 'targets');
    expect(r.code, output(r)).toBe(1);
    expect(r.stdout).toMatch(/target1: 1 problem\(s\), 2 run\(s\) match[^\n]*\n  - run \S+ \(seq 2, [^)]*\) touched target1, but target1 has no copy/);
    expect(r.stdout).toContain("target2: ok, 2 run(s) match the controller's");
    const other = join(work, 'other.pem');
    loadSigningKey(other);
    const wrong = await verify('-l', 'targets', '--key', other);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/chain broken: signed by key [0-9a-f]{16}, which is not among the trusted keys/);
  }, 60_000);
});
