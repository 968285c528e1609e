/**
 * Loads and validates a run's input with no network: vault keyring, inventory, playbook (or
 * the one-role play of `infra run`), extra vars, and the template renderer.
 */
import { dirname, resolve, join } from 'node:path';
import { loadInventory } from '../inventory/load.js';
import { parseExtraVars } from '../inventory/vars.js';
import { loadPlaybook } from '../playbook/load.js';
import { loadRole } from '../playbook/role.js';
import type { Play } from '../playbook/schema.js';
import type { Inventory } from '../inventory/types.js';
import { moduleRegistry } from '../modules/index.js';
import { createRenderer, type Renderer } from '../render/template.js';
import { Keyring, createDecryptor } from '../secrets/vault.js';
import { Secret } from '../secrets/secret.js';
import type { VaultDecryptor } from '../secrets/types.js';
import { INFRA_HOME, userCacheDir } from '../home.js';

export interface InputRequest {
  cwd: string;
  inventory: string;
  playbook?: string;
  /** `infra run ROLE`: a single play applying this role to --limit. */
  role?: string;
  limit?: string;
  extraVars: string[];
  vaultPasswordFile?: string;
  /**
   * No vault password given (check, inventory listing): each !vault value stands in as an
   * opaque Secret (its type is checked, its content is not), so an inventory holding secrets
   * validates anywhere. Apply and plan never set it: they need the real values.
   */
  vaultOptional?: boolean;
}

export interface RunInput {
  inventory: Inventory;
  plays: Play[];
  playbookDir: string;
  extraVars: Record<string, unknown>;
  renderer: Renderer;
}

export function rolesDirs(cwd: string): string[] {
  return [...new Set([join(cwd, 'roles'), join(INFRA_HOME, 'roles')])];
}

export async function loadKeyring(req: Pick<InputRequest, 'vaultPasswordFile'>): Promise<Keyring> {
  return Keyring.fromSources({ passwordFile: req.vaultPasswordFile, env: process.env });
}

/** Stands in for every !vault value when no password is given and none is needed. */
export const lockedDecryptor: VaultDecryptor = { decrypt: () => new Secret('(a vault value, not decrypted)') };

function decryptorFor(keyring: Keyring, vaultOptional?: boolean): VaultDecryptor {
  return vaultOptional && keyring.isEmpty() ? lockedDecryptor : createDecryptor(keyring);
}

export async function loadInventoryFor(req: Pick<InputRequest, 'cwd' | 'inventory' | 'vaultPasswordFile' | 'vaultOptional'>): Promise<Inventory> {
  const keyring = await loadKeyring(req);
  return loadInventory(req.inventory, { cwd: req.cwd, decryptor: decryptorFor(keyring, req.vaultOptional) });
}

/**
 * The run's input. `onTargets` hears, as soon as they are known and before any role loads,
 * the inventory and the `hosts:` patterns of the plays (a caller starts connecting there).
 */
export async function loadRunInput(req: InputRequest, onTargets?: (inventory: Inventory, patterns: string[]) => void): Promise<RunInput> {
  const keyring = await loadKeyring(req);
  const decryptor = decryptorFor(keyring, req.vaultOptional);
  const inventory = await loadInventory(req.inventory, { cwd: req.cwd, decryptor });
  const renderer = createRenderer({ sharedDir: join(INFRA_HOME, 'templates'), cacheDir: join(userCacheDir(), 'templates') });
  const extraVars = parseExtraVars(req.extraVars, req.cwd);
  const dirs = rolesDirs(req.cwd);
  if (req.role) {
    onTargets?.(inventory, [req.limit ?? 'all']);
    const role = await loadRole(req.role, dirs);
    const play: Play = {
      name: `run ${req.role}`,
      hosts: req.limit ?? 'all',
      roles: [{ role, vars: {} }],
      tasks: [],
      handlers: {},
      vars: {},
      tags: [],
      anyErrorsFatal: false,
    };
    return { inventory, plays: [play], playbookDir: req.cwd, extraVars, renderer };
  }
  const playbookPath = resolve(req.cwd, req.playbook ?? 'playbooks/site.yaml');
  const playbook = await loadPlaybook(playbookPath, {
    modules: moduleRegistry,
    rolesDirs: dirs,
    decryptor,
    onHostPatterns: onTargets && ((patterns) => onTargets(inventory, patterns)),
  });
  return { inventory, plays: playbook.plays, playbookDir: dirname(playbookPath), extraVars, renderer };
}
