/**
 * Fake role contexts: a small hand-built inventory (no files) and the ctx a role's tasks()
 * receives, with `hosts()` answered by the real pattern matcher.
 */
import type { Facts } from '../../../src/facts/types.js';
import type { GroupSpec, HostSpec, Inventory } from '../../../src/inventory/types.js';
import { selectHosts } from '../../../src/inventory/limit.js';
import { mergeVars } from '../../../src/inventory/vars.js';
import type { HostView } from '../../../src/modules/types.js';
import type { RoleContext } from '../../../src/playbook/role.js';

export interface FakeHost {
  address: string;
  /** Direct groups; "all" and the ancestors are added as the loader does. */
  groups?: string[];
  /** Inventory host name, or absent = reached directly. */
  bastion?: string;
  user?: string;
  vars?: Record<string, unknown>;
}

export interface FakeInventory {
  hosts: Record<string, FakeHost>;
  /** Group → { children, vars }. Groups named by hosts but not listed here are created. */
  groups?: Record<string, { children?: string[]; vars?: Record<string, unknown> }>;
}

export function fakeInventory(spec: FakeInventory): Inventory {
  const groups = new Map<string, GroupSpec>();
  const group = (name: string): GroupSpec => {
    let g = groups.get(name);
    if (!g) groups.set(name, (g = { name, children: [], hosts: [], vars: {} }));
    return g;
  };
  group('all');
  for (const [name, g] of Object.entries(spec.groups ?? {})) Object.assign(group(name), { children: g.children ?? [], vars: g.vars ?? {} });
  const parentOf = (child: string) => [...groups.values()].filter((g) => g.children.includes(child)).map((g) => g.name);
  const ancestry = (g: string): string[] => [...parentOf(g).flatMap(ancestry), g];

  const hosts = new Map<string, HostSpec>();
  for (const [name, h] of Object.entries(spec.hosts)) {
    for (const g of h.groups ?? []) group(g).hosts.push(name);
    const all = ['all', ...new Set((h.groups ?? []).flatMap(ancestry))].filter((g, i, a) => a.indexOf(g) === i);
    // Deep merge, as the loader does: mappings merge, lists replace.
    const merged = mergeVars([...all.map((g) => groups.get(g)!.vars), h.vars]);
    hosts.set(name, {
      name,
      groups: all,
      vars: merged,
      provenance: new Map(),
      conn: { connection: 'ssh', address: h.address, port: 22, user: h.user ?? 'admin', become: 'sudo', bastion: h.bastion },
    });
  }
  return { env: 'fake', dir: '/nonexistent', hosts, groups, knownHostsPath: '/nonexistent/known_hosts' };
}

export const FACTS: Facts = {
  hostname: 'h',
  fqdn: 'h',
  os: { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)', family: 'debian' },
  kernel: '6.1.0',
  arch: 'x86_64',
  cpus: 2,
  memoryMb: 2048,
  container: 'none',
  uid: 0,
  initSystem: 'systemd',
};

export const hostsOf =
  (inv: Inventory) =>
  (pattern: string): HostView[] =>
    selectHosts(inv, pattern).map((n) => {
      const s = inv.hosts.get(n)!;
      return { name: n, address: s.conn.address, groups: s.groups, vars: s.vars };
    });

/** The ctx of `host`, with vars parsed by the role's schema from the host's merged vars + extra. */
export function contextFor<V>(
  schema: { parse(v: unknown): V },
  inv: Inventory,
  host: string,
  opts: { facts?: Partial<Facts>; vars?: Record<string, unknown> } = {},
): RoleContext<V> {
  const spec = inv.hosts.get(host);
  if (!spec) throw new Error(`no host ${host} in the fake inventory`);
  return {
    vars: schema.parse({ ...spec.vars, ...opts.vars }),
    host: { name: host, address: spec.conn.address, groups: spec.groups, facts: { ...FACTS, ...opts.facts } },
    hosts: hostsOf(inv),
    inventory: inv,
  };
}
