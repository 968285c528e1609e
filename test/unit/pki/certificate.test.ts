/**
 * The CA, signing and the re-issue decision, with real keys and certificates made by
 * openssl on this machine (no host, no network).
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createCa } from '../../../src/pki/ca.js';
import { openssl } from '../../../src/pki/openssl.js';
import { readCertificate, reissueReasons, signCsr, type OnHost } from '../../../src/pki/certificate.js';
import { parseSan, sanSet } from '../../../src/pki/san.js';
import type { Secret } from '../../../src/secrets/secret.js';

const DAY = 86_400_000;
let ca: { certPem: string; key: Secret; x509: X509Certificate };
let other: { certPem: string; key: Secret; x509: X509Certificate };

/** A host key and its CSR, as the host makes them. */
async function hostKey(cn = 'db1'): Promise<{ publicPem: string; csr: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const csr = await openssl(['req', '-new', '-key', '@host.key', '-subj', `/CN=${cn}`], { files: { 'host.key': keyPem } });
  return { publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), csr };
}

const text = (pem: string) => openssl(['x509', '-noout', '-text', '-in', '@c.pem'], { files: { 'c.pem': pem } });

const sans = (...s: string[]) => sanSet(s.map((x) => parseSan(x)!));

beforeAll(async () => {
  const a = await createCa({ commonName: 'infra test CA', days: 30 });
  ca = { ...a, x509: new X509Certificate(a.certPem) };
  const b = await createCa({ commonName: 'another CA', days: 30 });
  other = { ...b, x509: new X509Certificate(b.certPem) };
});

describe('createCa', () => {
  it('makes an ECDSA P-256 CA certificate that only signs certificates', async () => {
    expect(ca.x509.ca).toBe(true);
    expect(ca.x509.subject).toBe('CN=infra test CA');
    expect(ca.x509.publicKey.asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' });
    const t = await text(ca.certPem);
    expect(t).toMatch(/CA:TRUE, pathlen:0/);
    expect(t).toMatch(/Certificate Sign, CRL Sign/);
    expect(String(ca.key)).toBe('********'); // a Secret: never printed
  });
});

describe('signCsr', () => {
  it('issues what we ask, not what the CSR asks, and openssl verifies it against the CA', async () => {
    const h = await hostKey('evil-name');
    const pem = await signCsr(h.csr, ca, { commonName: 'db1', sans: sans('db1', '10.0.0.5'), days: 10 });
    const c = readCertificate(pem)!;
    expect(c.commonName).toBe('db1');
    expect(c.sans.map((s) => `${s.type}:${s.value}`)).toEqual(['DNS:db1', 'IP:10.0.0.5']);
    expect(c.publicKey).toBe(h.publicPem);
    expect(c.notAfter.getTime() - Date.now()).toBeGreaterThan(9 * DAY);
    expect(c.notAfter.getTime() - Date.now()).toBeLessThan(11 * DAY);
    const t = await text(pem);
    expect(t).toMatch(/CA:FALSE/);
    expect(t).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    const verified = await openssl(['verify', '-CAfile', '@ca.crt', '@leaf.crt'], { files: { 'ca.crt': ca.certPem, 'leaf.crt': pem } });
    expect(verified).toMatch(/leaf\.crt: OK/);
    await expect(openssl(['verify', '-CAfile', '@ca.crt', '@leaf.crt'], { files: { 'ca.crt': other.certPem, 'leaf.crt': pem } })).rejects.toThrow();
  });

  it('refuses a subject that could break out of -subj, and an empty SAN list', async () => {
    const h = await hostKey();
    await expect(signCsr(h.csr, ca, { commonName: 'db1/O=evil', sans: sans('db1'), days: 10 })).rejects.toThrow(/subject/);
    await expect(signCsr(h.csr, ca, { commonName: 'db1', sans: [], days: 10 })).rejects.toThrow(/subject alternative name/);
  });

  it('fails on a CSR whose signature is wrong (openssl checks it)', async () => {
    const h = await hostKey();
    const broken = h.csr.replace(/[A-Za-z](?=[A-Za-z0-9+/=]*\n-----END)/, (c) => (c === 'A' ? 'B' : 'A'));
    await expect(signCsr(broken, ca, { commonName: 'db1', sans: sans('db1'), days: 10 })).rejects.toThrow(/openssl x509 failed/);
  });
});

describe('reissueReasons', () => {
  let anotherKey: string;
  let good: { on: OnHost; want: { commonName: string; sans: ReturnType<typeof sans>; renewBeforeDays: number } };
  beforeAll(async () => {
    const h = await hostKey();
    const pem = await signCsr(h.csr, ca, { commonName: 'db1', sans: sans('db1', '10.0.0.5'), days: 20 });
    anotherKey = (await hostKey()).publicPem;
    good = { on: { cert: readCertificate(pem), keyPublic: h.publicPem }, want: { commonName: 'db1', sans: sans('db1', '10.0.0.5'), renewBeforeDays: 5 } };
  });
  const now = new Date();

  it('leaves a good certificate alone', () => {
    expect(reissueReasons(good.on, good.want, ca.x509, now)).toEqual([]);
  });

  it.each([
    ['no certificate', (o: OnHost) => ({ ...o, cert: undefined }), {}, /^no certificate yet$/],
    ['not a certificate', (o: OnHost) => ({ ...o, cert: null }), {}, /not a PEM certificate/],
    ['no key', (o: OnHost) => ({ ...o, keyPublic: undefined }), {}, /^no key: a new one is generated/],
    ['not a key', (o: OnHost) => ({ ...o, keyPublic: null }), {}, /not a private key/],
    ['another key', (o: OnHost) => ({ ...o, keyPublic: anotherKey }), {}, /^the key does not match the certificate$/],
    ['a new SAN', (o: OnHost) => o, { sans: sans('db1', '10.0.0.5', '10.0.0.10') }, /^SANs differ: \+IP:10\.0\.0\.10$/],
    ['a SAN gone', (o: OnHost) => o, { sans: sans('db1') }, /^SANs differ: -IP:10\.0\.0\.5$/],
    ['another CN', (o: OnHost) => o, { commonName: 'db2' }, /^CN differs: db1 → db2$/],
    ['within renew_before', (o: OnHost) => o, { renewBeforeDays: 30 }, /^expires \d{4}-\d\d-\d\d, within renew_before 30d$/],
  ])('re-issues when %s, and says why', (_what, onHost, want, reason) => {
    const r = reissueReasons(onHost(good.on), { ...good.want, ...want }, ca.x509, now);
    expect(r).toHaveLength(1);
    expect(r[0]).toMatch(reason);
  });

  it('re-issues a certificate of another CA, and an expired one', () => {
    expect(reissueReasons(good.on, good.want, other.x509, now)).toEqual(['issued by another CA (CN=infra test CA)']);
    const later = new Date(Date.now() + 21 * DAY);
    expect(reissueReasons(good.on, good.want, ca.x509, later)[0]).toMatch(/^expired \d{4}-/);
  });
});
