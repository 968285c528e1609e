/**
 * `--shard K/N`: N controllers (CI runners: a GitHub Actions matrix, GitLab `parallel`) share
 * one fleet, each running the same command with its own K. Every shard computes the same
 * split from the same input, so together they cover every selected host exactly once.
 *
 * The split is by units, not single hosts: hosts that must roll out together (a play's
 * `serial` batches, its failure threshold; a patch group's order) stay in one shard, or two
 * runners would restart both load balancers at once. Units are dealt largest first, each to
 * the shard with the fewest hosts so far (ties: the lower shard), names breaking every tie.
 */
export interface Shard {
  /** 1-based: this runner's shard. */
  index: number;
  count: number;
}

export function shardLabel(s: Shard): string {
  return `${s.index}/${s.count}`;
}

/** The hosts of `units` that shard `s` gets. */
export function shardHosts(units: readonly (readonly string[])[], s: Shard): Set<string> {
  const sorted = units.map((u) => [...u].sort()).filter((u) => u.length > 0);
  sorted.sort((a, b) => b.length - a.length || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const loads = new Array<number>(s.count).fill(0);
  const mine = new Set<string>();
  for (const unit of sorted) {
    const to = loads.indexOf(Math.min(...loads));
    loads[to] += unit.length;
    if (to === s.index - 1) for (const h of unit) mine.add(h);
  }
  return mine;
}

/**
 * The units of a run's hosts: one per host, merged across every play that rolls its hosts
 * out together. A host in two such plays joins both plays' hosts into one unit.
 */
export function rolloutUnits(plays: readonly { hosts: readonly string[]; together: boolean }[]): string[][] {
  const parent = new Map<string, string>();
  const find = (h: string): string => {
    let r = h;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(h, r);
    return r;
  };
  for (const p of plays) for (const h of p.hosts) if (!parent.has(h)) parent.set(h, h);
  for (const p of plays) {
    if (!p.together) continue;
    for (const h of p.hosts.slice(1)) parent.set(find(h), find(p.hosts[0]));
  }
  const units = new Map<string, string[]>();
  for (const h of parent.keys()) {
    const r = find(h);
    units.set(r, [...(units.get(r) ?? []), h]);
  }
  return [...units.values()];
}
