/** Role helpers: group members with addresses, live primary, vault-only secrets. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { members, privateAddress } from '../../../src/cluster/members.js';
import { livePrimary, observeMembers, SplitBrain, type RoleProbe } from '../../../src/cluster/live.js';
import { vaultSecret } from '../../../src/cluster/secrets.js';
import { cluster } from '../../../src/modules/index.js';
import { validateRoleVars, type RoleDef } from '../../../src/playbook/role.js';
import { Secret, redact } from '../../../src/secrets/secret.js';
import { UserError } from '../../../src/errors.js';
import type { HostContext } from '../../../src/modules/types.js';
import type { RunResult } from '../../../src/transport/types.js';
import { fakeInventory, hostsOf } from '../roles/context.js';
import { fakeHost } from '../modules/fake-host.js';

const inv = fakeInventory({
  hosts: {
    db1: { address: '203.0.113.31', groups: ['postgres_primary'], vars: { private_address: '10.0.0.31' } },
    db2: { address: '10.0.0.32', groups: ['postgres_replica'] },
    db3: { address: 'fd00::33', groups: ['postgres_replica'] },
  },
  groups: { postgres: { children: ['postgres_primary', 'postgres_replica'] } },
});
const hosts = hostsOf(inv);

describe('members', () => {
  it('private_address first, inventory order, endpoints with ports (IPv6 in brackets)', () => {
    expect(members(hosts, 'postgres', { port: 5432 })).toEqual([
      { name: 'db1', address: '10.0.0.31', port: 5432, endpoint: '10.0.0.31:5432' },
      { name: 'db2', address: '10.0.0.32', port: 5432, endpoint: '10.0.0.32:5432' },
      { name: 'db3', address: 'fd00::33', port: 5432, endpoint: '[fd00::33]:5432' },
    ]);
    expect(members(hosts, 'postgres_replica').map((m) => m.endpoint)).toEqual(['10.0.0.32', 'fd00::33']);
    expect(privateAddress({ address: '1.2.3.4', vars: { private_address: '' } })).toBe('1.2.3.4');
  });
});

/** A host whose peers answer from a table (name → result or an error). */
function withPeers(answers: Record<string, Partial<RunResult> | Error>): HostContext & { asked: string[] } {
  const asked: string[] = [];
  return Object.assign(fakeHost([]), {
    hosts,
    asked,
    async peerRun(name: string, cmd: string): Promise<RunResult> {
      asked.push(`${name}: ${cmd}`);
      const a = answers[name];
      if (a instanceof Error) throw a;
      const stdout = a?.stdout ?? '';
      return { code: a?.code ?? 0, stdout, stderr: a?.stderr ?? '', stdoutBytes: Buffer.from(stdout) };
    },
  });
}

const pgProbe: RoleProbe = {
  describe: 'pg_is_in_recovery()',
  command: "psql -tAc 'select pg_is_in_recovery()'",
  read: (r) => (r.code !== 0 ? 'unknown' : r.stdout.trim() === 'f' ? 'primary' : 'replica'),
};

describe('observeMembers / livePrimary', () => {
  it('asks every member through its own session; an unreachable member is unknown, not an error', async () => {
    const h = withPeers({ db1: { stdout: 't\n' }, db2: { stdout: 'f\n' }, db3: new Error('connect timeout') });
    const states = await observeMembers(h, ['db1', 'db2', 'db3'], pgProbe);
    expect(states).toEqual([
      { name: 'db1', role: 'replica', answer: 't' },
      { name: 'db2', role: 'primary', answer: 'f' },
      { name: 'db3', role: 'unknown', answer: 'unreachable: connect timeout' },
    ]);
    expect(h.asked).toEqual(['db1', 'db2', 'db3'].map((n) => `${n}: ${pgProbe.command}`));
    expect(livePrimary(states, pgProbe)).toBe('db2');
  });

  it('two primaries: a split brain naming both', async () => {
    const states = await observeMembers(withPeers({ db1: { stdout: 'f' }, db2: { stdout: 'f' } }), ['db1', 'db2'], pgProbe);
    expect(() => livePrimary(states, pgProbe)).toThrow(SplitBrain);
    expect(() => livePrimary(states, pgProbe)).toThrow(/several members answer as primary: db1, db2/);
  });
});

describe('cluster.primary', () => {
  const params = { members: 'postgres', expected: 'postgres_primary', probe: pgProbe.command, primaryOutput: 'f', describe: 'pg_is_in_recovery()', hint: 'Move db2 to postgres_primary and db1 to postgres_replica.' };
  const check = (answers: Record<string, Partial<RunResult> | Error>) => {
    const m = cluster.primary.module;
    return m.check(withPeers(answers), m.params.parse(params));
  };

  it('passes when the inventory\'s primary is the live one', async () => {
    const c = await check({ db1: { stdout: 'f' }, db2: { stdout: 't' }, db3: { stdout: 't' } });
    expect(c.changes).toEqual([]);
    expect(c.reason).toBe('db1 is the primary, as the inventory says (pg_is_in_recovery() on db1: f, db2: t, db3: t)');
  });

  it('passes on a cluster not built yet (nobody answers)', async () => {
    const c = await check({ db1: { code: 2, stderr: 'psql: error: connection refused' }, db2: { code: 127 }, db3: { code: 127 } });
    expect(c.reason).toMatch(/^no member answers as primary yet \(pg_is_in_recovery\(\) on db1: exit 2: psql: error: connection refused, db2: exit 127/);
  });

  it('after a failover, stops the host with what it found and what to do', async () => {
    const err = await check({ db1: { stdout: 't' }, db2: { stdout: 'f' }, db3: { stdout: 't' } }).catch((e) => e);
    expect(err.message).toBe(
      'the inventory says db1 is the primary of postgres, but db2 is (pg_is_in_recovery() on db1: t, db2: f, db3: t). ' +
        'Stopping here so nothing reverts the failover. Move db2 to postgres_primary and db1 to postgres_replica.',
    );
  });

  it('refuses an expected pattern that is not exactly one member', async () => {
    const m = cluster.primary.module;
    await expect(m.check(withPeers({}), m.params.parse({ ...params, expected: 'postgres_replica' }))).rejects.toThrow(/must name one host/);
  });
});

describe('vaultSecret', () => {
  const role = {
    name: 'pg',
    file: '/roles/pg/role.ts',
    dir: '/roles/pg',
    vars: z.object({ pg_replication_password: vaultSecret('pg_replication_password', { file: 'group_vars/postgres.yaml' }) }),
    tasks: () => [],
  } as unknown as RoleDef;

  it('accepts a vault value', () => {
    const s = new Secret('from the vault 123');
    expect((validateRoleVars(role, { pg_replication_password: s }, new Map()) as { pg_replication_password: Secret }).pg_replication_password).toBe(s);
  });

  it('missing: an input error with the exact command to create it', () => {
    const err = (() => { try { validateRoleVars(role, {}, new Map()); } catch (e) { return e; } })() as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(
      "variable pg_replication_password: not set; create it once: openssl rand -base64 32 | tr -d '\\n' | infra vault encrypt-string --name pg_replication_password --stdin  — and paste the printed line after \"pg_replication_password:\" in group_vars/postgres.yaml",
    );
  });

  it('in clear text: refused, and the value is masked in the error', () => {
    const err = (() => { try { validateRoleVars(role, { pg_replication_password: 'clear-text-pass-42' }, new Map()); } catch (e) { return e; } })() as UserError;
    expect(err.message).toMatch(/must be a !vault value, not clear text/);
    expect(redact(err.format())).not.toContain('clear-text-pass-42');
  });
});
