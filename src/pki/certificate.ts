/**
 * Leaf certificates of the internal CA: what one says about itself (read with node:crypto),
 * why an existing one must be re-issued, and signing a host's CSR with the CA key (openssl).
 * Pure decisions here; the module (src/modules/tls.ts) does the host side.
 */
import { X509Certificate, randomBytes, createPublicKey } from 'node:crypto';
import type { Secret } from '../secrets/secret.js';
import { openssl, sealKey } from './openssl.js';
import { formatSan, sanDifference, sansOfCertificate, type San } from './san.js';

const DAY_MS = 86_400_000;

/** Host names and CNs we put in a subject: nothing that could end the openssl `-subj` value. */
export const COMMON_NAME = /^[A-Za-z0-9_.*-]{1,64}$/;

export interface LeafRequest {
  commonName: string;
  sans: San[];
  days: number;
}

/** The certificate a CA issued, in the terms the module compares. */
export interface IssuedCertificate {
  x509: X509Certificate;
  commonName: string;
  sans: San[];
  notAfter: Date;
  /** The public key, SPKI PEM (compared with the key on the host). */
  publicKey: string;
}

/** Parses the first certificate of a PEM text; undefined when it is not one. */
export function readCertificate(pem: string | Buffer): IssuedCertificate | undefined {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch {
    return undefined;
  }
  return {
    x509,
    commonName: /(?:^|\n)CN=([^\n]*)/.exec(x509.subject)?.[1] ?? '',
    sans: sansOfCertificate(x509.subjectAltName),
    notAfter: new Date(x509.validTo),
    publicKey: x509.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** An SPKI PEM in one canonical form (openssl and node print the same key alike, but be sure). */
export function canonicalPublicKey(pem: string): string | undefined {
  try {
    return createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString();
  } catch {
    return undefined;
  }
}

export const isoDate = (d: Date): string => d.toISOString().slice(0, 10);

export interface Wanted {
  commonName: string;
  sans: San[];
  renewBeforeDays: number;
}

/** What is on the host, as check() read it. */
export interface OnHost {
  /** undefined: no certificate file; null: a file that is not a certificate. */
  cert: IssuedCertificate | null | undefined;
  /** The host key's public half; undefined: no key file; null: a file that is not a key. */
  keyPublic: string | null | undefined;
}

/**
 * Why the certificate must be (re)issued, for people ("expires 2027-01-02, within
 * renew_before 30d"); empty when the one there is good: issued by this CA, for this key,
 * with exactly these SANs and this CN, and not within renew_before of its end.
 */
export function reissueReasons(on: OnHost, want: Wanted, ca: X509Certificate, now: Date): string[] {
  if (on.cert === undefined) return ['no certificate yet'];
  if (on.cert === null) return ['the file there is not a PEM certificate'];
  const c = on.cert;
  const reasons: string[] = [];
  if (!c.x509.checkIssued(ca) || !c.x509.verify(ca.publicKey)) reasons.push(`issued by another CA (${oneLine(c.x509.issuer)})`);
  if (on.keyPublic === undefined) reasons.push('no key: a new one is generated on the host');
  else if (on.keyPublic === null) reasons.push('the key file is not a private key: a new one is generated on the host');
  else if (canonicalPublicKey(on.keyPublic) !== c.publicKey) reasons.push('the key does not match the certificate');
  const sans = sanDifference(c.sans, want.sans);
  if (sans) reasons.push(`SANs differ: ${sans}`);
  if (c.commonName !== want.commonName) reasons.push(`CN differs: ${c.commonName} → ${want.commonName}`);
  const left = c.notAfter.getTime() - now.getTime();
  if (left <= 0) reasons.push(`expired ${isoDate(c.notAfter)}`);
  else if (left <= want.renewBeforeDays * DAY_MS) reasons.push(`expires ${isoDate(c.notAfter)}, within renew_before ${want.renewBeforeDays}d`);
  return reasons;
}

/** "CN=infra lab CA" from a multi-line subject/issuer. */
export const oneLine = (dn: string): string => dn.split('\n').join(', ');

/**
 * Signs a CSR with the CA. The subject and every extension come from `req`, never from the
 * CSR (a host cannot ask for more than we give it); openssl checks the CSR's own signature.
 * The CA key reaches openssl encrypted under a one-time passphrase (sealKey).
 */
export async function signCsr(csrPem: string, ca: { certPem: string; key: Secret }, req: LeafRequest): Promise<string> {
  if (!COMMON_NAME.test(req.commonName)) throw new Error(`cannot put "${req.commonName}" in a certificate subject`);
  if (req.sans.length === 0) throw new Error('a certificate needs at least one subject alternative name');
  const config = [
    '[leaf]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    // Servers (PostgreSQL, Redis, HAProxy) and the same hosts as clients (replication, mTLS).
    'extendedKeyUsage = serverAuth, clientAuth',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
    `subjectAltName = ${req.sans.map(formatSan).join(', ')}`,
    '',
  ].join('\n');
  const sealed = sealKey(ca.key);
  const pem = await openssl(
    [
      'x509', '-req', '-sha256', '-in', '@host.csr',
      '-CA', '@ca.crt', '-CAkey', '@ca.key', '-passin', 'stdin', '-extfile', '@leaf.cnf', '-extensions', 'leaf',
      '-subj', `/CN=${req.commonName}`,
      '-days', String(req.days),
      '-set_serial', serialNumber(),
    ],
    { files: { 'host.csr': csrPem, 'ca.crt': ca.certPem, 'ca.key': sealed.pem, 'leaf.cnf': config }, stdin: sealed.passphrase },
  );
  if (!readCertificate(pem)) throw new Error('openssl x509 -req printed no certificate');
  return pem;
}

/** 128 random bits, positive (RFC 5280: serials are positive, at most 20 octets). */
export function serialNumber(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return `0x${b.toString('hex')}`;
}
