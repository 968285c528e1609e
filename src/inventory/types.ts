/**
 * The resolved inventory: what the loader (inventory/load.ts) produces from
 * inventories/<env>/{hosts.yaml, group_vars/*.yaml, host_vars/*.yaml, known_hosts}.
 */
import type { SourcePos } from '../errors.js';
import type { Secret } from '../secrets/secret.js';
import type { VaultDecryptor } from '../secrets/types.js';

export interface ConnectionSettings {
  connection: 'ssh' | 'local';
  address: string;
  port: number; // default 22
  user: string; // default "root"
  /** Absolute path of a private key (resolved relative to the inventory dir). */
  key?: string;
  /** Passphrase of the key (a vault value). */
  keyPassphrase?: Secret;
  /** Name of an inventory host, or "[user@]address[:port]". Absent = direct. */
  bastion?: string;
  become: false | 'sudo';
  /** sudo password (a vault value); absent = NOPASSWD via sudo -n. */
  becomePassword?: Secret;
  /** ssh keepalive; absent = the transport's default (15 s × 3). */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
}

/** One variable's value at one precedence level, with where it came from. */
export interface VarSource {
  level: 'role default' | 'group' | 'host' | 'play' | 'extra';
  /** Group name for level "group". */
  scope?: string;
  value: unknown;
  pos?: SourcePos;
}

export interface HostSpec {
  name: string;
  conn: ConnectionSettings;
  /** Every group the host belongs to, ancestors included, "all" first, most specific last. */
  groups: string[];
  /** group vars (all < parent < child) < host vars, deep-merged. */
  vars: Record<string, unknown>;
  /** Top-level var name → each level's contribution (for `infra explain`). */
  provenance: Map<string, VarSource[]>;
  pos?: SourcePos;
}

export interface GroupSpec {
  name: string;
  children: string[];
  /** Hosts listed directly in this group (children's hosts not included). */
  hosts: string[];
  vars: Record<string, unknown>;
  pos?: SourcePos;
}

export interface Inventory {
  /** "lab", "prod", or the path given. */
  env: string;
  /** Absolute directory of the inventory. */
  dir: string;
  hosts: Map<string, HostSpec>;
  groups: Map<string, GroupSpec>;
  /** Absolute path of the known_hosts file (may not exist yet). */
  knownHostsPath: string;
  /** Decrypts vault values kept beside the inventory when they are needed (pki/ca-key.yaml). */
  vault?: VaultDecryptor;
}
