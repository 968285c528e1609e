/**
 * Tiers of the network diagram: each host is drawn in the first tier one of its groups
 * names (groups as the shipped inventories spell them); a host in none of them is drawn in a
 * box named after its top-level group, and a host in no group under "other hosts".
 */
export interface Tier {
  id: string;
  label: string;
  /** A host in one of these groups (or their child groups) belongs to the tier. */
  groups: string[];
  /** Drawn inside this enclosing box. */
  parent?: { id: string; label: string };
}

const DATA = { id: 'data', label: 'data' };

export const TIERS: readonly Tier[] = [
  { id: 'bastion', label: 'bastion', groups: ['bastion'] },
  { id: 'edge', label: 'edge / load balancers', groups: ['lb'] },
  { id: 'api', label: 'api', groups: ['api'] },
  { id: 'postgres', label: 'postgres', groups: ['postgres'], parent: DATA },
  { id: 'redis', label: 'redis', groups: ['redis'], parent: DATA },
  { id: 'monitoring', label: 'monitoring', groups: ['monitoring'] },
  { id: 'backup', label: 'backup', groups: ['backup'] },
];

export const OTHER_TIER: Tier = { id: 'other', label: 'other hosts', groups: [] };

/** `groups`: every group of the host, ancestors included (as the inventory loader gives them). */
export function tierOf(groups: readonly string[]): Tier {
  const known = TIERS.find((t) => t.groups.some((g) => groups.includes(g)));
  if (known) return known;
  const top = groups.find((g) => g !== 'all');
  return top ? { id: `group_${top}`, label: top, groups: [top] } : OTHER_TIER;
}
