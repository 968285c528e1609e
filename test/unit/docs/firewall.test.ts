/**
 * The firewall the docs describe is the one the role installs: per host, the rules `infra docs`
 * computes equal the rules the hardening role's tasks hand to infra.nft.hbs; the matrix rows
 * name sources as declared and targets by the smallest inventory description.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSite, type Site } from '../../../src/docs/site.js';
import { hostViews } from '../../../src/docs/firewall.js';
import { describeHosts, firewallPage, matrixRows } from '../../../src/docs/matrix.js';
import { loadRole, validateRoleVars } from '../../../src/playbook/role.js';
import { rolesDirs } from '../../../src/engine/input.js';
import { FACTS } from '../roles/context.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FIXTURE = { cwd: REPO, inventory: 'test/fixtures/docs/inventory', playbook: 'test/fixtures/docs/site.yaml' };

let lab: Site;
let small: Site;
beforeAll(async () => {
  lab = await loadSite({ cwd: REPO, inventory: 'lab' });
  small = await loadSite(FIXTURE);
});

describe('the rules documented are the rules installed', () => {
  it('every lab host: the docs rules equal what the hardening role renders into infra.nft', async () => {
    const role = await loadRole('hardening', rolesDirs(REPO));
    const inv = lab.inventory;
    expect(lab.firewall.hosts.map((h) => h.host)).toEqual([...inv.hosts.keys()]);
    for (const fw of lab.firewall.hosts) {
      const spec = inv.hosts.get(fw.host)!;
      const vars = validateRoleVars(role, spec.vars, spec.provenance);
      const tasks = role.tasks({ vars, host: { name: fw.host, address: spec.conn.address, groups: spec.groups, facts: FACTS }, hosts: hostViews(inv), inventory: inv });
      expect(fw.rules, fw.host).toEqual(infraNftRules(tasks));
      expect(fw.rules.length, fw.host).toBeGreaterThan(1);
    }
  });

  it('the union of a host\'s grants per rule is that rule\'s sources', () => {
    for (const fw of [...lab.firewall.hosts, ...small.firewall.hosts]) {
      for (const r of fw.rules) {
        const granted = new Set(fw.grants.filter((g) => g.match === r.match).flatMap((g) => g.sources));
        expect([...granted].sort(), `${fw.host} ${r.match}`).toEqual([...(r.any ? ['any'] : []), ...r.sources4, ...r.sources6].sort());
      }
    }
  });

  it('a host whose firewall the role leaves alone (firewall.enabled: false) is documented as not managed, with no rules', () => {
    const db2 = small.firewall.hosts.find((h) => h.host === 'db2')!;
    expect(db2).toMatchObject({ managed: false, rules: [], grants: [], role: 'hardening' });
    expect(firewallPage(small, 'infra docs -i x')).toMatch(/Not managed by infra .*: `db2`\./);
    expect(firewallPage(small, 'infra docs -i x')).not.toMatch(/### db2/);
  });
});

/** The rules the role hands to templates/infra.nft.hbs (a files.template task, or a file of a confirm.files unit). */
function infraNftRules(tasks: { module: { name: string }; params: unknown }[]): unknown {
  type Rendered = { src?: string; template?: string; vars?: { rules?: unknown } };
  const rendered = tasks.flatMap((t) => {
    const p = t.params as Rendered & { files?: Rendered[] };
    return [p, ...(p.files ?? [])];
  });
  const nft = rendered.filter((r) => r.src === 'infra.nft.hbs' || r.template === 'infra.nft.hbs');
  expect(nft).toHaveLength(1);
  return nft[0].vars?.rules;
}

describe('matrix rows', () => {
  it('the fixture inventory, row by row', () => {
    const rows = matrixRows(small).map((r) => [r.from, r.to, r.service, r.comment, r.sources.join(' ')]);
    expect(rows).toEqual([
      ['203.0.113.0/24', 'bastion', 'tcp/22', 'ssh', '203.0.113.0/24'],
      ['any', 'web', 'tcp/443', 'https', 'any'],
      ['any', 'web', 'udp/60000-61000', 'mosh', 'any'],
      ['web', 'web', 'vrrp', 'keepalived', '10.0.0.11 10.0.0.12'],
      ['web', 'db1', 'tcp/5432', 'postgresql', '10.0.0.11 10.0.0.12'],
      ['192.0.2.0/24', 'db1', 'tcp/5432', 'postgresql', '192.0.2.0/24'],
      // SSH to hosts behind the bastion comes from its address: shown as the bastion.
      ['bastion', 'web1, web2, db1', 'tcp/22', 'ssh', '10.0.0.2'],
      ['db', 'bastion, web1, web2, db1', 'tcp/9100', 'exporter', '10.0.0.21 10.0.0.22'],
    ]);
  });

  it('lab: the flows the seed names, from the resolved rules', () => {
    const rows = matrixRows(lab);
    const row = (from: string, to: string, service: string) => rows.find((r) => r.from === from && r.to === to && r.service === service);
    expect(row('api', 'postgres', 'tcp/5432')?.sources).toEqual(['172.28.77.21', '172.28.77.22']);
    expect(row('monitoring', 'all', 'tcp/9100')?.toHosts).toHaveLength(11);
    expect(row('lb', 'lb', 'vrrp')?.sources).toEqual(['172.28.77.11', '172.28.77.12']);
    expect(row('bastion', 'all:!bastion', 'tcp/22')?.sources).toEqual(['172.28.77.2']);
    expect(row('any', 'lb', 'tcp/443')?.sources).toEqual(['any']);
    expect(row('172.28.77.1/32', 'bastion', 'tcp/22')).toBeDefined();
  });

  it.each([
    [['bastion', 'lb1', 'lb2', 'api1', 'api2', 'db1', 'db2', 'redis1', 'redis2', 'mon1', 'backup1'], 'all'],
    [['db1', 'db2'], 'postgres'],
    [['db1'], 'postgres_primary'],
    [['redis1', 'redis2', 'mon1'], 'sentinel'],
    [['lb1', 'lb2', 'api1', 'api2', 'db1', 'db2', 'redis1', 'redis2', 'mon1', 'backup1'], 'all:!bastion'],
    [['api1', 'db2'], 'api1, db2'],
  ])('describeHosts(%j) = %s', (hosts, want) => {
    expect(describeHosts(lab.inventory, hosts)).toBe(want);
  });
});
