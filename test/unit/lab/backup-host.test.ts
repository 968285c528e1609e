/**
 * backup1 in the shipped inventories: the hardening role's firewall for it, built from the
 * real inventory files — SSH from the bastion and, for restic's chrooted SFTP users (role
 * restic), from exactly the hosts that back up (restic_clients: every other inventory host; never from anywhere), pgBackRest's TLS port (8432)
 * from the PostgreSQL hosts only, and the PostgreSQL hosts open 8432 to it.
 */
import { describe, expect, it } from 'vitest';
import role, { vars as hardeningVars } from '../../../roles/hardening/role.js';
import type { resolveRules } from '../../../roles/hardening/firewall.js';
import { loadInventory } from '../../../src/inventory/load.js';
import { lockedDecryptor } from '../../../src/engine/input.js';
import type { Inventory } from '../../../src/inventory/types.js';
import { REPO_ROOT } from '../../../src/lab/options.js';
import { FACTS, hostsOf } from '../roles/context.js';

type Rules = ReturnType<typeof resolveRules>;

function firewallOf(inv: Inventory, host: string): Rules {
  const spec = inv.hosts.get(host)!;
  const tasks = role.tasks({
    vars: hardeningVars.parse(spec.vars),
    host: { name: host, address: spec.conn.address, groups: spec.groups, facts: FACTS },
    hosts: hostsOf(inv),
    inventory: inv,
  });
  // The ruleset is written by the role's commit-confirmed unit (confirm.files).
  const files = tasks.flatMap((t) => (t.params as { files?: { template?: string; vars?: { rules: Rules } }[] }).files ?? []);
  return files.find((f) => f.template === 'infra.nft.hbs')!.vars!.rules;
}

describe.each([
  ['lab', '172.28.77.2', ['172.28.77.31', '172.28.77.32'], '172.28.77.61'],
  ['prod', '10.20.0.2', ['10.20.0.31', '10.20.0.32'], '10.20.0.61'],
])('backup1 in inventories/%s', (env, bastion, dbs, backup) => {
  it('is behind the bastion, SSH from the restic clients only (every other inventory host), pgBackRest TLS from the postgres hosts only', async () => {
    const inv = await loadInventory(env, { cwd: REPO_ROOT, decryptor: lockedDecryptor });
    expect(inv.hosts.get('backup1')!.conn).toMatchObject({ address: backup, bastion: 'bastion' });
    const rules = firewallOf(inv, 'backup1');
    const clients = [...inv.hosts.values()].filter((h) => !h.groups.includes('backup')).map((h) => (h.vars.private_address as string | undefined) ?? h.conn.address).sort();
    expect(rules.find((r) => r.match === 'tcp dport 22')).toMatchObject({ sources4: clients, any: false });
    expect(clients).toContain(bastion);
    expect(clients).not.toContain(backup);
    expect(rules.find((r) => r.match === 'tcp dport 8432')).toMatchObject({ sources4: dbs, sources6: [], any: false });
    expect(rules.filter((r) => r.any)).toEqual([]);
  });

  it('the postgres hosts accept pgBackRest from backup1 only', async () => {
    const inv = await loadInventory(env, { cwd: REPO_ROOT, decryptor: lockedDecryptor });
    for (const db of ['db1', 'db2']) expect(firewallOf(inv, db).find((r) => r.match === 'tcp dport 8432')).toMatchObject({ sources4: [backup], any: false });
  });
});
