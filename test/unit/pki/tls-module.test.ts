/**
 * tls.certificate's decisions on a scripted host (test/unit/modules/fake-host.ts) with a real
 * CA: what check() plans and why, that check mode only reads, and what apply() sends: the
 * host makes the key and the CSR, the controller signs, only the certificate is written.
 */
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tls } from '../../../src/modules/index.js';
import { wantedSans } from '../../../src/modules/tls.js';
import { initCa, loadCa } from '../../../src/pki/ca.js';
import { readCertificate, signCsr } from '../../../src/pki/certificate.js';
import { openssl } from '../../../src/pki/openssl.js';
import { formatSan, parseSan } from '../../../src/pki/san.js';
import { Keyring, createDecryptor } from '../../../src/secrets/vault.js';
import type { Inventory } from '../../../src/inventory/types.js';
import { fakeHost, fileProbe, type Scripted, withChanges } from '../modules/fake-host.js';

let dir: string;
let inventory: Inventory;
let host: { publicPem: string; csr: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'infra-tls-'));
  const keyring = new Keyring({}, 'tls unit password');
  await initCa(dir, { commonName: 'infra unit CA', days: 100, keyring, vaultId: 'default' });
  inventory = { env: 'unit', dir, hosts: new Map(), groups: new Map(), knownHostsPath: join(dir, 'known_hosts'), vault: createDecryptor(keyring) };
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  host = {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    csr: await openssl(['req', '-new', '-key', '@k', '-subj', '/CN=web1'], { files: { k: keyPem } }),
  };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const params = { certPath: '/etc/ssl/web1.crt', keyPath: '/etc/ssl/private/web1.key', caPath: '/etc/ssl/infra-ca.crt' };
const MARK = '@@infra-tls:';

/** The probe's answer: key (stat + public half), certificate, CA file. */
function probe(o: { key?: string | null; cert?: string; ca?: string }): Scripted {
  const parts = [
    `${MARK}key`,
    o.key === undefined ? 'absent' : fileProbe({ mode: '0600', content: 'x', fetched: false }),
    `${MARK}pub`,
    o.key === undefined ? '' : (o.key ?? 'invalid'),
    `${MARK}cert`,
    o.cert === undefined ? 'absent' : fileProbe({ content: o.cert }),
    `${MARK}ca`,
    o.ca === undefined ? 'absent' : fileProbe({ content: o.ca, fetched: false }),
  ];
  return { stdout: parts.join('\n') };
}

const hostWith = (answers: Scripted[], checkMode = false) =>
  Object.assign(fakeHost(answers, { checkMode }), { inventory, vars: { private_address: '10.1.0.5' } });

async function issued(sans: string[], days = 50): Promise<string> {
  const ca = await loadCa(inventory);
  return signCsr(host.csr, { certPem: ca.certPem, key: await ca.key() }, { commonName: 'web1', sans: sans.map((s) => parseSan(s)!), days });
}

describe('tls.certificate check', () => {
  it('plans key, certificate and CA file on a fresh host, reading only (check mode)', async () => {
    const h = hostWith([probe({})], true);
    const m = tls.certificate.module;
    const c = await m.check(h, m.params.parse(params));
    expect(c.changes.map((x) => x.what)).toEqual(['generate key on the host', 'issue certificate', 'write CA certificate /etc/ssl/infra-ca.crt']);
    expect(c.changes[1]).toMatchObject({ from: 'no certificate yet', to: 'CN=web1, DNS:web1 IP:10.0.0.5 IP:10.1.0.5, 365 days, by CN=infra unit CA' });
    expect(h.commands).toHaveLength(1);
    expect(h.puts).toEqual([]);
  });

  it('leaves a good certificate alone and says until when', async () => {
    const ca = await loadCa(inventory);
    const cert = await issued(['web1', '10.0.0.5', '10.1.0.5'], 300);
    const h = hostWith([probe({ key: host.publicPem, cert, ca: ca.certPem })]);
    const m = tls.certificate.module;
    const c = await m.check(h, m.params.parse({ ...params, mode: '0644' }));
    expect(c.changes).toEqual([]);
    expect(c.reason).toMatch(/^valid until \d{4}-\d\d-\d\d, CN=web1, DNS:web1 IP:10\.0\.0\.5 IP:10\.1\.0\.5, issued by CN=infra unit CA$/);
  });

  it('re-issues within renew_before, and for a new SAN, keeping the key', async () => {
    const ca = await loadCa(inventory);
    const cert = await issued(['web1', '10.0.0.5', '10.1.0.5'], 20);
    const h = hostWith([probe({ key: host.publicPem, cert, ca: ca.certPem })]);
    const m = tls.certificate.module;
    const c = await m.check(h, m.params.parse({ ...params, sans: ['172.28.77.10'] }));
    expect(c.changes.map((x) => x.what)).toEqual(['issue certificate']);
    expect(c.changes[0]?.from).toMatch(/^SANs differ: \+IP:172\.28\.77\.10; expires \d{4}-\d\d-\d\d, within renew_before 30d$/);
  });

  it('apply: the host makes the key and the CSR; the controller signs; only certificates are written', async () => {
    const h = hostWith([probe({}), { stdout: '' }, { stdout: host.csr }]);
    const m = tls.certificate.module;
    const p = m.params.parse({ ...params, owner: 'root', group: 'ssl-cert', keyMode: '0640' });
    await m.apply(h, p, withChanges(await m.check(h, p)));
    expect(h.commands[1]).toMatch(/openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256/);
    expect(h.commands[1]).toMatch(/chgrp -h ssl-cert "\$t"/);
    expect(h.commands[1]).toMatch(/^infra_walk \/etc\/ssl\/private\ninfra_own_dir 0$/m); // key material only in a root-only directory
    expect(h.commands[1]).toMatch(/chmod 0640 "\$t" && mv -f -T "\$t" \.\/web1\.key/);
    expect(h.commands[2]).toBe("openssl req -new -key /etc/ssl/private/web1.key -subj /CN=web1");
    expect(h.puts.map((x) => x.path)).toEqual(['/etc/ssl/web1.crt', '/etc/ssl/infra-ca.crt']);
    const cert = readCertificate(h.puts[0].bytes)!;
    expect(cert.publicKey).toBe(host.publicPem);
    expect(cert.sans.map(formatSan)).toEqual(['DNS:web1', 'IP:10.0.0.5', 'IP:10.1.0.5']);
    expect(h.puts[0].opts).toMatchObject({ mode: '0644', owner: 'root', group: 'ssl-cert' });
    // No private key in anything sent to the host.
    expect(JSON.stringify(h.puts) + h.commands.join('\n')).not.toMatch(/PRIVATE KEY/);
  });
});

describe('tls.certificate parameters', () => {
  const parse = (p: Record<string, unknown>) => tls.certificate.module.params.safeParse({ ...params, ...p });
  it.each([
    [{ renewBefore: '60d', validity: '30d' }, /validity must be longer than renewBefore/],
    [{ sans: ['ok.example', 'not valid'] }, /not a DNS name or an IP address/],
    [{ renewBefore: '1 month' }, /or like/],
    [{ keyPath: params.certPath }, /must differ/],
    [{ commonName: 'a/b' }, /host name/],
  ])('refuses %j', (p, message) => {
    const r = parse(p);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(message);
  });

  it('caPath is optional: a certificate and a key alone are valid', () => {
    expect(tls.certificate.module.params.safeParse({ certPath: params.certPath, keyPath: params.keyPath }).success).toBe(true);
  });

  it('reads durations in days, weeks and years', () => {
    const r = parse({ renewBefore: '2w', validity: '2y' });
    expect(r.success && [r.data.renewBefore, r.data.validity]).toEqual([14, 730]);
  });

  it('SANs: name, address, private_address, extras; an address that is neither fails', () => {
    const h = { name: 'db1', address: '10.0.0.5', vars: { private_address: '10.1.0.5' } };
    expect(wantedSans(h, { sans: ['db.internal', '10.0.0.5'], inventorySans: true }).map(formatSan)).toEqual(['DNS:db.internal', 'DNS:db1', 'IP:10.0.0.5', 'IP:10.1.0.5']);
    expect(wantedSans(h, { sans: ['db.internal'], inventorySans: false }).map(formatSan)).toEqual(['DNS:db.internal']);
    expect(() => wantedSans({ ...h, vars: { private_address: 'a b' } }, { sans: [], inventorySans: true })).toThrow(/not a DNS name/);
  });
});

describe('tls.caTrust', () => {
  it('refuses anything but exactly one PEM certificate', async () => {
    const ca = await loadCa(inventory);
    const m = tls.caTrust.module;
    expect(m.params.safeParse({ name: 'infra-unit', certificate: ca.certPem }).success).toBe(true);
    expect(m.params.safeParse({ name: 'infra-unit', certificate: ca.certPem + ca.certPem }).success).toBe(false);
    expect(m.params.safeParse({ name: 'infra-unit', certificate: 'hello' }).success).toBe(false);
    expect(m.params.safeParse({ name: '../etc/x', certificate: ca.certPem }).success).toBe(false);
  });
});
