/** `infra explain VAR --host H`: the variable's value at every precedence level, with file:line. */
import { resolve } from 'node:path';
import { UserError, formatPos, didYouMean } from '../errors.js';
import { explainVar, parseExtraVars, mergeVars } from '../inventory/vars.js';
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
  let play: { vars: Record<string, unknown>; pos?: { file: string; line?: number } } | undefined;
  if (req.playbook) {
    const decryptor = createDecryptor(await loadKeyring(req));
    const pb = await loadPlaybook(resolve(req.cwd, req.playbook), { modules: moduleRegistry, rolesDirs: rolesDirs(req.cwd), decryptor });
    const p = pb.plays.find((x) => req.name in (x.vars ?? {}));
    if (p) play = { vars: p.vars, pos: p.varsPos?.[req.name] ?? p.pos };
  }
  const extra = parseExtraVars(req.extraVars, req.cwd);
  const levels = explainVar(inventory, req.host, req.name, { roleDefaults, play, extra });
  return formatExplain(req.name, req.host, levels);
}

export function formatExplain(name: string, host: string, levels: VarSource[]): string {
  if (levels.length === 0) return `${name} is not set for ${host} at any level\n`;
  const lines = [`${name} for ${host} (lowest precedence first; mappings merge key by key, anything else replaces):`];
  for (const l of levels) {
    const where = l.pos ? formatPos(l.pos) : '';
    const scope = l.scope ? ` ${l.scope}` : '';
    lines.push(`  ${(l.level + scope).padEnd(24)} ${redact(JSON.stringify(l.value))}${where ? `   (${where})` : ''}`);
  }
  const effective = mergeVars(levels.map((l) => ({ [name]: l.value })))[name];
  lines.push(`  ${'effective'.padEnd(24)} ${redact(JSON.stringify(effective))}`);
  return lines.join('\n') + '\n';
}
