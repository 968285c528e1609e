/** A fresh ed25519 login key pair in OpenSSH format (what both OpenSSH and ssh2 read). */
import { chmod, writeFile } from 'node:fs/promises';
import ssh2 from 'ssh2';

export interface KeyPair {
  privateKey: string;
  /** "ssh-ed25519 AAAA... comment" */
  publicKey: string;
}

export function generateKeyPair(comment: string): KeyPair {
  const { private: privateKey, public: publicKey } = ssh2.utils.generateKeyPairSync('ed25519', { comment });
  return { privateKey, publicKey: publicKey.trim() };
}

/** Writes `path` (0600) and `path.pub`. */
export async function writeKeyPair(path: string, pair: KeyPair): Promise<void> {
  await writeFile(path, pair.privateKey, { mode: 0o600 });
  await chmod(path, 0o600);
  await writeFile(`${path}.pub`, `${pair.publicKey}\n`, { mode: 0o644 });
}
