/** `infra inventory hosts|graph|list -i prod` through the real CLI. */
import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { infra } from './run-cli.js';
import { aliasBomb } from '../yaml/alias-bomb.js';
import { tmpTree, removeTrees } from '../inventory/tmp-tree.js';

afterAll(removeTrees);

describe('infra inventory -i prod', () => {
  it('hosts: name, address and route, one per line, in inventory order', async () => {
    const r = await infra(['inventory', 'hosts', '-i', 'prod']);
    expect(r.code).toBe(0);
    const rows = r.stdout.trimEnd().split('\n').map((l) => l.split('\t'));
    expect(rows.map((x) => x[0])).toEqual(['bastion', 'lb1', 'lb2', 'api1', 'api2', 'db1', 'db2', 'redis1', 'redis2', 'mon1', 'backup1']);
    expect(rows[0]).toEqual(['bastion', '203.0.113.10', 'direct']);
    expect(rows[5]).toEqual(['db1', '10.20.0.31', 'via bastion']);
  });

  it('hosts PATTERN: groups, intersections and exclusions', async () => {
    const names = async (pattern: string) => (await infra(['inventory', 'hosts', pattern, '-i', 'prod'])).stdout.trimEnd().split('\n').map((l) => l.split('\t')[0]);
    expect(await names('postgres')).toEqual(['db1', 'db2']);
    expect(await names('sentinel:&redis')).toEqual(['redis1', 'redis2']);
    expect(await names('sentinel:!redis1')).toEqual(['redis2', 'mon1']);
  });

  it('hosts with an unknown pattern exits 2 with a suggestion', async () => {
    const r = await infra(['inventory', 'hosts', 'postgress', '-i', 'prod']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no host or group named "postgress" — did you mean "postgres"\?/);
  });

  it('graph: the group tree with child groups nested and hosts under them', async () => {
    const r = await infra(['inventory', 'graph', '-i', 'prod']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('@all\n  @bastion\n    bastion\n');
    expect(r.stdout).toContain('  @postgres\n    @postgres_primary\n      db1\n    @postgres_replica\n      db2\n');
    expect(r.stdout).toContain('  @sentinel\n    redis1\n    redis2\n    mon1\n');
  });

  it('list: JSON of every host with connection, groups and merged vars', async () => {
    const r = await infra(['inventory', 'list', '-i', 'prod']);
    expect(r.code).toBe(0);
    const hosts = JSON.parse(r.stdout) as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(hosts).toHaveLength(11);
    const bastion = hosts.find((h) => h.name === 'bastion')!;
    expect(bastion).toMatchObject({ address: '203.0.113.10', user: 'admin', become: 'sudo', groups: ['all', 'bastion'] });
    expect(bastion.vars).toMatchObject({ private_address: '10.20.0.2', ssh_allow_from: ['198.51.100.0/24', '10.99.0.0/24'] });
    expect(bastion.bastion).toBeUndefined();
    const db1 = hosts.find((h) => h.name === 'db1')!;
    expect(db1.groups).toEqual(['all', 'postgres', 'postgres_primary']);
    expect(db1.bastion).toBe('bastion');
    expect(db1.vars.firewall.allow.map((a: { port: number }) => a.port)).toEqual([5432, 6432, 9187, 8432]);
  });

  it('list: a YAML alias bomb exits 2 within seconds, naming file:line', async () => {
    const dir = tmpTree({ 'hosts.yaml': aliasBomb() });
    const t0 = Date.now();
    const r = await infra(['inventory', 'list', '-i', dir]);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^error: ${join(dir, 'hosts.yaml')}:10:14: YAML aliases expand to more than \\d+ values`));
  });
});
