/**
 * Host patterns (--limit, a play's `hosts:`, `ctx.hosts()` in roles):
 *   db1             a host            postgres   a group (with its child groups' hosts)
 *   all, *          every host        web*, db?, db[12]   a glob over host and group names
 *   a:b, a,b        union             a:&b       intersection      a:!b   exclusion
 * As in Ansible, the unions are taken first, then intersections, then exclusions, whatever
 * their order; a pattern of exclusions only starts from all. The result is in inventory order.
 * A plain name that is neither a host nor a group is an error (a typo must not select nothing).
 */
import { UserError, didYouMean } from '../errors.js';
import type { Inventory } from './types.js';

export function selectHosts(inv: Inventory, pattern: string): string[] {
  const parts = pattern.split(/[:,]/).map((p) => p.trim());
  if (!pattern.trim() || parts.some((p) => p === '' || p === '&' || p === '!')) {
    throw new UserError(`invalid host pattern "${pattern}"`, { hint: 'e.g. web1, api, db*, api:db (union), api:&prod (and), all:!db1 (except)' });
  }
  const union = new Set<string>();
  const intersections: Set<string>[] = [];
  const exclusions = new Set<string>();
  let positives = 0;
  for (const part of parts) {
    if (part.startsWith('&')) intersections.push(matchAtom(inv, part.slice(1), pattern));
    else if (part.startsWith('!')) matchAtom(inv, part.slice(1), pattern).forEach((h) => exclusions.add(h));
    else {
      positives++;
      matchAtom(inv, part, pattern).forEach((h) => union.add(h));
    }
  }
  const start = positives ? union : new Set(inv.hosts.keys());
  return [...inv.hosts.keys()].filter((h) => start.has(h) && intersections.every((s) => s.has(h)) && !exclusions.has(h));
}

function matchAtom(inv: Inventory, atom: string, pattern: string): Set<string> {
  if (atom === 'all' || atom === '*') return new Set(inv.hosts.keys());
  const out = new Set<string>();
  if (/[*?[]/.test(atom)) {
    const re = globToRegExp(atom);
    for (const h of inv.hosts.keys()) if (re.test(h)) out.add(h);
    for (const g of inv.groups.keys()) if (re.test(g)) hostsOfGroup(inv, g).forEach((h) => out.add(h));
    return out;
  }
  const isHost = inv.hosts.has(atom);
  const isGroup = inv.groups.has(atom);
  if (!isHost && !isGroup) {
    const guess = didYouMean(atom, [...inv.hosts.keys(), ...inv.groups.keys()]);
    throw new UserError(`host pattern "${pattern}": no host or group named "${atom}"${guess ? ` — did you mean "${guess}"?` : ''}`, {
      hint: `see: infra inventory graph -i ${inv.env}`,
    });
  }
  if (isHost) out.add(atom);
  if (isGroup) hostsOfGroup(inv, atom).forEach((h) => out.add(h));
  return out;
}

/** Every host in the group, its child groups included (HostSpec.groups holds ancestors). */
function hostsOfGroup(inv: Inventory, group: string): string[] {
  return [...inv.hosts.values()].filter((h) => h.groups.includes(group)).map((h) => h.name);
}

/** `*` any run, `?` one character, `[abc]` / `[1-3]` / `[!x]` a class; anchored. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let cls = glob.slice(i + 1, end);
        if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/[\\\]]/g, '\\$&')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
