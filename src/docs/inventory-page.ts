/** The inventory page: hosts, groups, plays and the roles each host gets; versions with --facts. */
import { relative } from 'node:path';
import { selectHosts } from '../inventory/limit.js';
import type { Site } from './site.js';
import { KEY_PACKAGES, type HostReports } from './host-facts.js';
import { code, generatedBy, table } from './markdown.js';

export function inventoryPage(site: Site, command: string, cwd: string, reports?: HostReports): string {
  const inv = site.inventory;
  const roleLink = (r: string) => `[${r}](../roles/${r}.md)`;
  const out: string[] = [
    generatedBy(command),
    '',
    `# Inventory: \`${site.env}\``,
    '',
    `${inv.hosts.size} hosts in ${inv.groups.size} groups, from \`${relative(cwd, inv.dir) || '.'}\`; roles from the plays of \`${site.playbook}\`. See also the [network diagram](network.svg) and the [firewall](firewall.md).`,
    '',
    '## Hosts',
    '',
    table(
      ['host', 'connects to', 'address seen by other hosts', 'reached', 'groups', 'roles'],
      site.hosts.map((h) => [
        code(h.name),
        code(`${h.address}${h.port !== 22 ? `:${h.port}` : ''}`),
        code(h.privateAddress),
        h.bastion ? `through ${code(h.bastion)}` : 'directly',
        h.groups.join(', '),
        h.roles.map(roleLink).join(', '),
      ]),
    ),
    '',
    '## Groups',
    '',
    table(
      ['group', 'children', 'hosts'],
      [...inv.groups.values()].map((g) => [code(g.name), g.children.join(', '), selectHosts(inv, g.name).join(', ')]),
    ),
    '',
    `## Plays (\`${site.playbook}\`)`,
    '',
    table(
      ['play', 'hosts', 'roles'],
      site.plays.map((p) => [p.name, `${code(p.pattern)}: ${p.hosts.join(', ') || 'none'}`, [...p.roles.map(roleLink), ...(p.tasks ? [`${p.tasks} tasks`] : [])].join(', ')]),
    ),
    '',
    '## Package versions',
    '',
  ];
  if (!reports) {
    out.push(`Not gathered here: \`${command} --facts\` connects to every host (read-only: no lock, no change) and lists the installed versions of ${KEY_PACKAGES.map(code).join(', ')}.`, '');
    return out.join('\n');
  }
  const installed = KEY_PACKAGES.filter((p) => Object.values(reports).some((r) => 'packages' in r && r.packages[p] !== undefined));
  out.push(
    `Gathered from the hosts with \`--facts\`: the installed versions of the key packages (${KEY_PACKAGES.length - installed.length} of them installed nowhere: not shown).`,
    '',
    table(
      ['host', 'OS', 'kernel', ...installed],
      site.hosts.map((h) => {
        const r = reports[h.name];
        if (!r) return [code(h.name), 'not gathered', '', ...installed.map(() => '')];
        if ('error' in r) return [code(h.name), `unreachable: ${r.error}`, '', ...installed.map(() => '')];
        return [code(h.name), r.os, r.kernel, ...installed.map((p) => (r.packages[p] ? code(r.packages[p]) : '—'))];
      }),
    ),
    '',
  );
  return out.join('\n');
}
