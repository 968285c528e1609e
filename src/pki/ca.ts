/**
 * The inventory's internal certificate authority, created once by `infra pki init -i ENV`
 * and kept as two files beside hosts.yaml:
 *
 *   pki/ca.crt        the CA certificate (PEM, plain text): commit it; clients and the
 *                     hosts' trust stores use it (`roles/ca-trust`, tls.certificate's caPath)
 *   pki/ca-key.yaml   `ca_key: !vault ...`: the CA's private key (ECDSA P-256), encrypted with
 *                     the vault like any other value (`infra vault view|rekey` work on it)
 *
 * The key is not an inventory variable: no host's vars, template or plan ever holds it. It is
 * decrypted on the controller, with the run's vault passwords, only when a certificate must
 * be signed, and handed to openssl re-encrypted under a one-time passphrase (src/pki/openssl.ts). A run where every certificate is already
 * good needs no vault password for it. ECDSA P-256: what PostgreSQL, Redis, HAProxy, nginx,
 * Node.js and Go clients all accept.
 */
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import type { Inventory } from '../inventory/types.js';
import { loadYamlFile } from '../yaml/positions.js';
import { Secret } from '../secrets/secret.js';
import { encryptValue, type Keyring } from '../secrets/vault.js';
import { oneLine, readCertificate } from './certificate.js';
import { openssl, sealKey } from './openssl.js';

export const CA_CERT_FILE = join('pki', 'ca.crt');
export const CA_KEY_FILE = join('pki', 'ca-key.yaml');
/** The key path the CA key is encrypted for (bound into its ciphertext). */
export const CA_KEY_NAME = 'ca_key';

export interface InventoryCa {
  /** The CA certificate, PEM. */
  certPem: string;
  x509: X509Certificate;
  /** "CN=infra prod CA" */
  name: string;
  /** Decrypts the CA key (once per run); a UserError when no vault password opens it. */
  key(): Promise<Secret>;
}

export interface CreateCaOptions {
  commonName: string;
  /** Validity in days. */
  days: number;
}

/** A new CA: key pair (node:crypto) and self-signed certificate (openssl, key on a pipe). */
export async function createCa(o: CreateCaOptions): Promise<{ certPem: string; key: Secret }> {
  const key = new Secret(
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    CA_KEY_NAME,
  );
  const config = [
    '[req]',
    'distinguished_name = dn',
    'x509_extensions = ca',
    '[dn]',
    '[ca]',
    'basicConstraints = critical, CA:TRUE, pathlen:0',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
    '',
  ].join('\n');
  const sealed = sealKey(key);
  const certPem = await openssl(
    ['req', '-x509', '-new', '-sha256', '-key', '@ca.key', '-passin', 'stdin', '-config', '@ca.cnf', '-subj', `/CN=${o.commonName}`, '-days', String(o.days)],
    { files: { 'ca.key': sealed.pem, 'ca.cnf': config }, stdin: sealed.passphrase },
  );
  return { certPem, key };
}

export interface InitCaOptions extends CreateCaOptions {
  keyring: Keyring;
  vaultId: string;
}

/** `infra pki init`: writes pki/ca.crt and pki/ca-key.yaml; refuses to replace an existing CA. */
export async function initCa(inventoryDir: string, o: InitCaOptions): Promise<{ certFile: string; keyFile: string; certPem: string }> {
  const certFile = join(inventoryDir, CA_CERT_FILE);
  const keyFile = join(inventoryDir, CA_KEY_FILE);
  const existing = [certFile, keyFile].filter((f) => existsSync(f));
  if (existing.length) {
    throw new UserError(`this inventory already has a CA (${existing.join(', ')})`, {
      hint: 'a new CA re-issues every certificate and every client must trust it: remove both files first if that is what you want',
    });
  }
  if (!/^[\w .-]{1,64}$/.test(o.commonName)) {
    throw new UserError(`invalid CA name "${o.commonName}"`, { hint: 'letters, digits, spaces, ".", "_" and "-", at most 64' });
  }
  const { certPem, key } = await createCa(o);
  // Encrypt before writing anything: a missing vault password must leave no half-made CA.
  const envelope = encryptValue(key, CA_KEY_NAME, o.keyring, o.vaultId);
  await mkdir(join(inventoryDir, 'pki'), { recursive: true });
  await writeFile(
    keyFile,
    [
      `# The private key of this inventory's internal CA (${o.commonName}), created by \`infra pki init\`.`,
      '# Vault-encrypted; infra decrypts it on the controller only to sign a certificate, and it',
      '# never goes to a host. Change its vault password with: infra vault rekey <this file>',
      `${CA_KEY_NAME}: !vault ${envelope}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  await writeFile(certFile, certPem, { mode: 0o644 });
  return { certFile, keyFile, certPem };
}

const loaded = new WeakMap<object, Promise<InventoryCa>>();

/** The inventory's CA (certificate read once per run; key decrypted on first use). */
export function loadCa(inventory: Pick<Inventory, 'dir' | 'env' | 'vault'>): Promise<InventoryCa> {
  let ca = loaded.get(inventory);
  if (!ca) {
    ca = readCa(inventory);
    loaded.set(inventory, ca);
  }
  return ca;
}

async function readCa(inventory: Pick<Inventory, 'dir' | 'env' | 'vault'>): Promise<InventoryCa> {
  const certFile = join(inventory.dir, CA_CERT_FILE);
  const certPem = await readFile(certFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
    throw new UserError(`inventory ${inventory.env} has no CA (${certFile} does not exist)`, { hint: `create it once: infra pki init -i ${inventory.env}` });
  });
  const cert = readCertificate(certPem);
  if (!cert || !cert.x509.ca) throw new UserError(`${certFile} is not a CA certificate`, { pos: { file: certFile } });
  let key: Promise<Secret> | undefined;
  return {
    certPem,
    x509: cert.x509,
    name: oneLine(cert.x509.subject),
    key: () => (key ??= decryptKey(inventory, cert.x509)),
  };
}

async function decryptKey(inventory: Pick<Inventory, 'dir' | 'vault'>, cert: X509Certificate): Promise<Secret> {
  const keyFile = join(inventory.dir, CA_KEY_FILE);
  if (!existsSync(keyFile)) throw new UserError(`the CA key ${keyFile} is missing`, { hint: 'restore it from version control; without it no certificate can be issued' });
  const doc = await loadYamlFile(keyFile, { decryptor: inventory.vault });
  if (doc.errors.length) throw doc.errors[0];
  const key = (doc.value as Record<string, unknown> | null)?.[CA_KEY_NAME];
  if (!(key instanceof Secret)) {
    throw new UserError(`${keyFile}: expected "${CA_KEY_NAME}: !vault ..."`, { pos: doc.pos([CA_KEY_NAME]), hint: 'the file infra pki init wrote; restore it from version control' });
  }
  if (!cert.checkPrivateKey(createPrivateKey(key.reveal()))) {
    throw new UserError(`${keyFile} holds a key that does not belong to ${CA_CERT_FILE}`, { hint: 'restore the pair from version control' });
  }
  return key;
}
