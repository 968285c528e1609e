/**
 * `openssl` on the controller, for the two things node:crypto cannot do: write a certificate
 * (the self-signed CA, a host's CSR signed by the CA). Called with an argument array, never a
 * shell. Inputs go in a private temp directory (0700, removed afterwards); the CA key only
 * ever lands there encrypted with a one-time passphrase that reaches openssl on stdin
 * (`-passin stdin`): its plaintext is never written to a disk.
 */
import { spawn } from 'node:child_process';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { Secret } from '../secrets/secret.js';

export interface OpensslInput {
  /** Files written to the temp directory; an argument "@name" becomes that file's path. */
  files?: Record<string, string>;
  stdin?: string | Secret;
}

/** Runs `openssl ...args`; resolves with stdout, throws with openssl's own message. */
export async function openssl(args: string[], input: OpensslInput = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'infra-pki-'));
  try {
    for (const [name, content] of Object.entries(input.files ?? {})) {
      await writeFile(join(dir, name), content, { mode: 0o600 });
    }
    const argv = args.map((a) => (a.startsWith('@') && input.files && a.slice(1) in input.files ? join(dir, a.slice(1)) : a));
    const stdin = input.stdin instanceof Secret ? input.stdin.reveal() : (input.stdin ?? '');
    return await spawnOpenssl(argv, stdin);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function spawnOpenssl(argv: string[], stdin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new UserError('openssl is not installed on this machine (it signs the certificates)', { hint: 'apt-get install openssl' })
          : e,
      ),
    );
    child.once('close', (code) => {
      if (code === 0) return resolve(Buffer.concat(out).toString('utf8'));
      // openssl never echoes its inputs: stderr says what failed, not the key.
      const msg = Buffer.concat(err).toString('utf8').trim().split('\n').slice(0, 5).join('\n');
      reject(new Error(`openssl ${argv[0]} failed (exit ${code}): ${msg}`));
    });
    child.stdin.on('error', () => {}); // openssl may exit before reading it all: its exit code tells
    child.stdin.end(stdin);
  });
}

/** A private key re-encrypted under a fresh random passphrase, for `-passin stdin`. */
export function sealKey(key: Secret): { pem: string; passphrase: Secret } {
  const passphrase = new Secret(randomBytes(32).toString('base64url'), 'one-time key passphrase');
  const pem = createPrivateKey(key.reveal())
    .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: passphrase.reveal() })
    .toString();
  return { pem, passphrase };
}
