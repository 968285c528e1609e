/**
 * What the environment's documents are made of: the inventory, the playbook's plays (the roles
 * each host gets) and each host's firewall. Loaded with no network and without the vault: no
 * document shows a secret, so `!vault` values stay locked (even with a password at hand) and
 * nobody needs one to regenerate the docs.
 */
import { relative, resolve } from 'node:path';
import { lockedDecryptor, rolesDirs } from '../engine/input.js';
import { loadInventory } from '../inventory/load.js';
import { selectHosts } from '../inventory/limit.js';
import type { Inventory } from '../inventory/types.js';
import { privateAddress } from '../cluster/members.js';
import { moduleRegistry } from '../modules/index.js';
import { loadPlaybook } from '../playbook/load.js';
import { siteFirewall, type SiteFirewall } from './firewall.js';
import { tierOf, type Tier } from './tiers.js';

export interface SiteHost {
  name: string;
  /** Where infra connects (address:port), directly or through `bastion`. */
  address: string;
  port: number;
  /** The address other hosts see. */
  privateAddress: string;
  bastion?: string;
  /** Its groups, ancestors included, without "all". */
  groups: string[];
  tier: Tier;
  /** Roles the playbook applies to it, in play order. */
  roles: string[];
  /** The virtual IP its group carries (`vip`), if any. */
  vip?: string;
}

export interface SitePlay {
  name: string;
  pattern: string;
  hosts: string[];
  roles: string[];
  tasks: number;
}

export interface Site {
  /** How the inventory was named on the command line ("lab"). */
  env: string;
  inventory: Inventory;
  /** The playbook, relative to the working directory. */
  playbook: string;
  hosts: SiteHost[];
  plays: SitePlay[];
  firewall: SiteFirewall;
}

export async function loadSite(req: { cwd: string; inventory: string; playbook?: string }): Promise<Site> {
  const inventory = await loadInventory(req.inventory, { cwd: req.cwd, decryptor: lockedDecryptor });
  const playbookPath = resolve(req.cwd, req.playbook ?? 'playbooks/site.yaml');
  const playbook = await loadPlaybook(playbookPath, { modules: moduleRegistry, rolesDirs: rolesDirs(req.cwd), decryptor: lockedDecryptor, cwd: req.cwd });

  const plays: SitePlay[] = playbook.plays.map((p) => ({
    name: p.name,
    pattern: p.hosts,
    hosts: selectHosts(inventory, p.hosts),
    roles: p.roles.map((r) => r.role.name),
    tasks: p.tasks.length,
  }));
  const hosts: SiteHost[] = [...inventory.hosts.values()].map((h) => {
    const vip = h.vars.vip;
    return {
      name: h.name,
      address: h.conn.address,
      port: h.conn.port,
      privateAddress: privateAddress({ address: h.conn.address, vars: h.vars }),
      bastion: h.conn.bastion,
      groups: h.groups.filter((g) => g !== 'all'),
      tier: tierOf(h.groups),
      roles: [...new Set(plays.filter((p) => p.hosts.includes(h.name)).flatMap((p) => p.roles))],
      vip: typeof vip === 'string' && vip !== '' ? vip : undefined,
    };
  });
  return {
    env: req.inventory,
    inventory,
    playbook: relative(req.cwd, playbookPath),
    hosts,
    plays,
    firewall: await siteFirewall(inventory, playbook.plays),
  };
}
