/** `infra explain VAR --host H`: the variable's value at every precedence level, with file:line. */
import { resolve } from 'node:path';
import { UserError, formatPos, didYouMean } from '../errors.js';
import { explainVar, extraVarsLayers, mergeVars, type VarsLayer } from '../inventory/vars.js';
import { selectHosts } from '../inventory/limit.js';
import { loadPlaybook } from '../playbook/load.js';
import { loadRole } from '../playbook/role.js';
import { moduleRegistry } from '../modules/index.js';
import { redact } from '../secrets/secret.js';
import { loadInventoryFor, rolesDirs, loadKeyring } from './input.js';
import { createDecryptor } from '../secrets/vault.js';
import type { VarSource } from '../inventory/types.js';

export interface ExplainRequest {
  cwd: string;
  inventory: string;
  vaultPasswordFile?: string;
  host: string;
  name: string;
  role?: string;
  playbook?: string;
  extraVars: string[];
}

export async function explainVariable(req: ExplainRequest): Promise<string> {
  const inventory = await loadInventoryFor(req);
  if (!inventory.hosts.has(req.host)) {
    const guess = didYouMean(req.host, inventory.hosts.keys());
    throw new UserError(`unknown host "${req.host}"`, { hint: guess ? `did you mean "${guess}"?` : 'see: infra inventory hosts -i ' + req.inventory });
  }
  let roleDefaults: Record<string, unknown> | undefined;
  if (req.role) {
    const role = await loadRole(req.role, rolesDirs(req.cwd));
    const parsed = role.vars.safeParse({});
    roleDefaults = parsed.success ? (parsed.data as Record<string, unknown>) : undefined;
  }
  const decryptor = createDecryptor(await loadKeyring(req));
  let plays: Array<VarsLayer & { name: string }> | undefined;
  if (req.playbook) {
    const pb = await loadPlaybook(resolve(req.cwd, req.playbook), { modules: moduleRegistry, rolesDirs: rolesDirs(req.cwd), decryptor });
    // Only the plays that run on this host give it their vars.
    plays = pb.plays
      .filter((p) => selectHosts(inventory, p.hosts).includes(req.host))
      .map((p) => ({ name: p.name, vars: p.vars, posOf: (k: string) => p.varsPos?.[k] ?? p.pos }));
  }
  const extra = extraVarsLayers(req.extraVars, req.cwd, { decryptor });
  const levels = explainVar(inventory, req.host, req.name, { roleDefaults, plays, extra });
  return formatExplain(req.name, req.host, levels, plays?.map((p) => p.name));
}

/** `plays`: the names of the playbook's plays that run on the host (when a playbook was given). */
export function formatExplain(name: string, host: string, levels: VarSource[], plays: string[] = []): string {
  if (levels.length === 0) return `${name} is not set for ${host} at any level\n`;
  const rows: Array<[label: string, value: string, where: string]> = levels.map((l) => [
    l.level === 'play' ? `play "${l.scope}"` : l.scope ? `${l.level} ${l.scope}` : l.level,
    redact(JSON.stringify(l.value)),
    l.pos ? `   (${formatPos(l.pos)})` : '',
  ]);
  // Play vars do not stack: when several plays run on the host and one sets the variable, each
  // play's tasks may see their own value.
  const effective = (ls: VarSource[]) => redact(JSON.stringify(mergeVars(ls.map((l) => ({ [name]: l.value })))[name]));
  const perPlay = plays.map((p) => [`effective in play "${p}"`, effective(levels.filter((l) => l.level !== 'play' || l.scope === p))]);
  if (new Set(perPlay.map(([, v]) => v)).size > 1) rows.push(...perPlay.map(([label, v]): [string, string, string] => [label, v, '']));
  else rows.push(['effective', effective(levels.filter((l) => l.level !== 'play' || l.scope === plays[0])), '']);
  const width = Math.max(24, ...rows.map(([label]) => label.length + 1));
  const lines = [`${name} for ${host} (lowest precedence first; mappings merge key by key, anything else replaces):`];
  for (const [label, value, where] of rows) lines.push(`  ${label.padEnd(width)} ${value}${where}`);
  return lines.join('\n') + '\n';
}
