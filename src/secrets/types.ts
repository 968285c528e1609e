import type { SourcePos } from '../errors.js';
import type { Secret } from './secret.js';

/**
 * Decrypts `!vault` values while inventories and vars files load. keyPath is the dotted
 * path of the value ("groups.all.vars.db_password"), bound as AES-GCM additional data so a
 * value moved to another key fails to decrypt.
 */
export interface VaultDecryptor {
  decrypt(envelope: string, keyPath: string, pos?: SourcePos): Secret;
}
