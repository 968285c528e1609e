/** A fresh ed25519 login key pair in OpenSSH format (what both OpenSSH and ssh2 read). */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';

export interface KeyPair {
  privateKey: string;
  /** "ssh-ed25519 AAAA... comment" */
  publicKey: string;
}

/**
 * Encoded here rather than by ssh2's generateKeyPairSync: ssh2 drops a public key's leading zero
 * byte, so about one key in 256 came out 31 bytes long and no SSH client could parse it (CI saw
 * "Malformed OpenSSH private key" on a fresh fleet).
 */
export function generateKeyPair(comment: string): KeyPair {
  // Encoded by the generation itself (DER), not by a later KeyObject.export({ format: 'jwk' }):
  // Node 20's JWK export holds the key's lock while allocating, and a GC then destroying the
  // finished key job takes the same lock: a deadlock (a CI run hung in the keypair unit test;
  // gdb: ExportJWKEdKey → GC → ~KeyGenJob → uv_mutex_lock).
  const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { format: 'der', type: 'spki' },
    privateKeyEncoding: { format: 'der', type: 'pkcs8' },
  });
  // Both end in the raw 32 bytes: SPKI's public key, PKCS#8's seed (RFC 8410).
  const pub = publicKey.subarray(-32);
  const seed = privateKey.subarray(-32);
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  const secret = Buffer.concat([
    check,
    check,
    sshString('ssh-ed25519'),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  const padding = Buffer.from(Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(publicBlob),
    sshString(Buffer.concat([secret, padding])),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return {
    privateKey: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
    publicKey: `ssh-ed25519 ${publicBlob.toString('base64')} ${comment}`,
  };
}

/** Writes `path` (0600) and `path.pub`. */
export async function writeKeyPair(path: string, pair: KeyPair): Promise<void> {
  await writeFile(path, pair.privateKey, { mode: 0o600 });
  await chmod(path, 0o600);
  await writeFile(`${path}.pub`, `${pair.publicKey}\n`, { mode: 0o644 });
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** SSH wire "string": a uint32 length, then the bytes. */
function sshString(v: string | Buffer): Buffer {
  const bytes = typeof v === 'string' ? Buffer.from(v) : v;
  return Buffer.concat([uint32(bytes.length), bytes]);
}
