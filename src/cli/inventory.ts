import type { Command } from 'commander';
import { loadInventoryFor } from '../engine/input.js';
import { selectHosts } from '../inventory/limit.js';
import type { Inventory } from '../inventory/types.js';
import { redactDeep } from '../secrets/secret.js';
import { inventoryOption } from './options.js';

export function register(program: Command): void {
  const inv = program.command('inventory').description('show the inventory: list, hosts, graph');
  inventoryOption(inv.command('list').description('every host with its connection, groups and variables (JSON)'))
    .option('-l, --limit <pattern>', 'hosts')
    .action(async (o) => {
      const inventory = await load(o);
      const hosts = selectHosts(inventory, o.limit ?? 'all').map((h) => {
        const s = inventory.hosts.get(h)!;
        return { name: h, ...s.conn, groups: s.groups, vars: s.vars };
      });
      process.stdout.write(JSON.stringify(redactDeep(hosts), null, 2) + '\n');
    });
  inventoryOption(inv.command('hosts').description('host names matching a pattern, one per line'))
    .argument('[pattern]', 'limit pattern', 'all')
    .action(async (pattern: string, o) => {
      const inventory = await load(o);
      for (const h of selectHosts(inventory, pattern)) {
        const s = inventory.hosts.get(h)!;
        process.stdout.write(`${h}\t${s.conn.address}${s.conn.port !== 22 ? `:${s.conn.port}` : ''}\t${s.conn.bastion ? `via ${s.conn.bastion}` : 'direct'}\n`);
      }
    });
  inventoryOption(inv.command('graph').description('the group tree with its hosts'))
    .action(async (o) => {
      process.stdout.write(graph(await load(o)));
    });
}

function load(o: { inventory: string; vaultPasswordFile?: string }): Promise<Inventory> {
  // Listing hosts needs no secret: without a vault password, vault values stay locked.
  return loadInventoryFor({ cwd: process.cwd(), inventory: o.inventory, vaultPasswordFile: o.vaultPasswordFile, vaultOptional: true });
}

/** "@all" tree: groups by children, direct hosts as leaves. */
export function graph(inventory: Inventory): string {
  const lines: string[] = [];
  const childOf = new Set([...inventory.groups.values()].flatMap((g) => g.children));
  const walk = (g: string, depth: number, seen: Set<string>) => {
    lines.push(`${'  '.repeat(depth)}@${g}`);
    if (seen.has(g)) return;
    seen.add(g);
    const spec = inventory.groups.get(g);
    for (const c of spec?.children ?? []) walk(c, depth + 1, seen);
    const hosts = g === 'all' ? [] : [...new Set([...(spec?.hosts ?? []), ...[...inventory.hosts.values()].filter((h) => h.groups.includes(g) && !(spec?.children ?? []).some((c) => h.groups.includes(c))).map((h) => h.name)])];
    for (const h of hosts) lines.push(`${'  '.repeat(depth + 1)}${h}`);
  };
  lines.push('@all');
  for (const g of inventory.groups.keys()) if (g !== 'all' && !childOf.has(g)) walk(g, 1, new Set());
  const ungrouped = [...inventory.hosts.values()].filter((h) => h.groups.every((g) => g === 'all')).map((h) => h.name);
  if (ungrouped.length) {
    lines.push('  @ungrouped');
    for (const h of ungrouped) lines.push(`    ${h}`);
  }
  return lines.join('\n') + '\n';
}
