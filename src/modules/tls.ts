/**
 * tls.*: certificates from the inventory's internal CA (src/pki/ca.ts), and CA certificates in
 * a host's trust store.
 *
 * tls.certificate — a host's key and certificate. The key is generated ON the host (openssl
 * there) and never leaves it; the host sends a CSR, the controller signs it with the CA key
 * (decrypted only then) and writes the certificate back. check() reads the key's public half,
 * the certificate and the files' attributes in one round trip and says why a certificate is
 * (re)issued: "no certificate yet", "expires 2027-01-02, within renew_before 30d",
 * "SANs differ: +IP:10.0.0.5", "issued by another CA (CN=old CA)", "the key does not match
 * the certificate". A good one is left alone. Check mode generates and signs nothing.
 * The key is kept when the certificate is renewed; delete the key file to rotate it.
 *
 * tls.caTrust — one CA certificate in /usr/local/share/ca-certificates/<name>.crt, and
 * update-ca-certificates when it changed (or when the trust store lacks it).
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { loadCa, type InventoryCa } from '../pki/ca.js';
import { COMMON_NAME, isoDate, oneLine, readCertificate, reissueReasons, signCsr, type IssuedCertificate } from '../pki/certificate.js';
import { formatSan, isValidSan, parseSan, sanSet, type San } from '../pki/san.js';
import { raw, sh } from '../shell/quote.js';
import { splitSections } from '../shell/sections.js';
import { attrChanges, modeSchema, ownerSchema, type FileAttrs } from './file-plan.js';
import { PINNED_DIR_FUNCTIONS } from '../shell/pinned-dir.js';
import { parseProbe, probeCommand, sha256, type FileState } from './file-state.js';
import { runChecked } from './run-checked.js';
import { applyWholeFile, checkWholeFile, pathSchema, type WriteData } from './whole-file.js';
import { defineModule, hasChanges, nonEmpty, unchanged, type Change, type Check, type HostContext } from './types.js';

// ---------------------------------------------------------------- durations

/** 30, "30d", "12w", "1y" → days. */
export const daysSchema = z.union([z.number().int().positive(), z.string().regex(/^\d+[dwy]$/, 'a number of days, or like "30d", "12w", "1y"')]).transform((v) => {
  if (typeof v === 'number') return v;
  return Number(v.slice(0, -1)) * { d: 1, w: 7, y: 365 }[v.slice(-1) as 'd' | 'w' | 'y'];
});

// ---------------------------------------------------------------- tls.certificate

const certificateParams = z
  .object({
    /** The certificate (PEM). */
    certPath: pathSchema,
    /** The private key: generated on the host, never sent anywhere. */
    keyPath: pathSchema,
    /** Also write the CA certificate here (ssl_ca_file, tls-ca-cert-file, ca-file). */
    caPath: pathSchema.optional(),
    /** Owner and group of every file written (the service user that reads the key). */
    owner: ownerSchema.optional(),
    group: ownerSchema.optional(),
    keyMode: modeSchema.default('0600'),
    /** Mode of the certificate and the CA certificate. */
    mode: modeSchema.default('0644'),
    /** Default: the host's inventory name. */
    commonName: z.string().regex(COMMON_NAME, 'a host name').optional(),
    /** Names besides the inventory's (a VIP, a service name): DNS names or IP addresses. */
    sans: z.array(z.string().refine(isValidSan, 'not a DNS name or an IP address')).default([]),
    /** Include the host's inventory name, address and private_address (default true). */
    inventorySans: z.boolean().default(true),
    /** Re-issue when the certificate ends within this many days. */
    renewBefore: daysSchema.default('30d'),
    validity: daysSchema.default('365d'),
  })
  .strict()
  .refine((p) => p.validity > p.renewBefore, { message: 'validity must be longer than renewBefore (or every run re-issues)', path: ['validity'] })
  .refine(
    (p) => {
      const paths = [p.certPath, p.keyPath, ...(p.caPath ? [p.caPath] : [])];
      return new Set(paths).size === paths.length;
    },
    { message: 'certPath, keyPath and caPath must differ' },
  );
export type CertificateParams = z.infer<typeof certificateParams>;

/** The SANs a host's certificate carries: inventory name, address, private_address, then extras. */
export function wantedSans(host: Pick<HostContext, 'name' | 'address' | 'vars'>, p: Pick<CertificateParams, 'sans' | 'inventorySans'>): San[] {
  const fromInventory = p.inventorySans ? [host.name, host.address, host.vars.private_address] : [];
  const out: San[] = [];
  for (const v of [...fromInventory, ...p.sans]) {
    if (v === undefined || v === null || v === '') continue;
    const san = parseSan(String(v));
    if (!san) throw new Error(`cannot put ${JSON.stringify(v)} in a certificate: not a DNS name or an IP address`);
    out.push(san);
  }
  return sanSet(out);
}

interface CertificateData {
  ca: InventoryCa;
  sans: San[];
  commonName: string;
  /** Why a certificate is issued; empty: it is good. */
  reasons: string[];
  newKey: boolean;
  keyAttrs: boolean;
  certAttrs: boolean;
  /** The certificate on the host, rewritten as is when only its owner or mode differ. */
  certPem?: string;
  writeCa: boolean;
  caAttrs: boolean;
}

const KEY = 'key';
const PUB = 'pub';
const CERT = 'cert';
const CAFILE = 'ca';
const MARK = '@@infra-tls:';

/** One round trip: the key's attributes and public half, the certificate, the CA file. */
function certificateProbe(p: CertificateParams, caPem: string): string {
  const parts = [
    `echo ${MARK}${KEY}`,
    probeCommand(p.keyPath, 'never'),
    `echo ${MARK}${PUB}`,
    sh`if [ -f ${p.keyPath} ]; then openssl pkey -in ${p.keyPath} -pubout 2>/dev/null || echo invalid; fi`,
    `echo ${MARK}${CERT}`,
    probeCommand(p.certPath, 'always'),
  ];
  if (p.caPath) parts.push(`echo ${MARK}${CAFILE}`, probeCommand(p.caPath, { unlessSha: sha256(caPem) }));
  return parts.join('\n');
}

export const certificate = defineModule<CertificateParams, z.input<typeof certificateParams>, CertificateData>({
  name: 'tls.certificate',
  params: certificateParams,
  describe: (p) => p.certPath,
  async check(host, p) {
    if (!host.inventory) throw new Error('tls.certificate needs the inventory (its CA): run it through infra apply');
    const ca = await loadCa(host.inventory);
    const sans = wantedSans(host, p);
    const commonName = p.commonName ?? host.name;
    if (!COMMON_NAME.test(commonName)) throw new Error(`host name ${commonName} cannot be a certificate's CN: give commonName`);

    const r = await runChecked(host, certificateProbe(p, ca.certPem), `read ${p.keyPath} and ${p.certPath}`);
    const s = splitSections(r.stdout, MARK);
    const key = parseProbe(s.get(KEY) ?? '');
    const cert = parseProbe(s.get(CERT) ?? '');
    const caFile = p.caPath ? parseProbe(s.get(CAFILE) ?? '') : undefined;
    for (const [path, st] of [[p.keyPath, key], [p.certPath, cert], [p.caPath, caFile]] as const) {
      if (st && st.kind !== 'absent' && st.kind !== 'file') throw new Error(`${path} is a ${st.kind}, not a regular file`);
    }
    const pub = (s.get(PUB) ?? '').trim();
    const onHost = {
      keyPublic: key.kind === 'absent' ? undefined : pub.startsWith('-----BEGIN PUBLIC KEY-----') ? pub : null,
      cert: cert.kind === 'absent' ? undefined : (readCertificate(cert.content ?? '') ?? null),
    };
    const reasons = reissueReasons(onHost, { commonName, sans, renewBeforeDays: p.renewBefore }, ca.x509, new Date());
    const newKey = onHost.keyPublic === undefined || onHost.keyPublic === null;

    const attrs = fileAttrs(p);
    const keyAttrs = newKey ? [] : attrChanges(key, { ...attrs, mode: p.keyMode });
    const certAttrs = reasons.length ? [] : attrChanges(cert, { ...attrs, mode: p.mode });
    const writeCa = !!caFile && (caFile.kind === 'absent' || caFile.sha256 !== sha256(ca.certPem));
    const caAttrs = caFile && !writeCa ? attrChanges(caFile, { ...attrs, mode: p.mode }) : [];
    const changes: Change[] = [];
    if (newKey) changes.push({ what: 'generate key on the host', to: `${p.keyPath} (EC P-256, mode ${p.keyMode})` });
    changes.push(...prefixed(p.keyPath, keyAttrs));
    if (reasons.length) {
      changes.push({ what: 'issue certificate', from: reasons.join('; '), to: `CN=${commonName}, ${sans.map(formatSan).join(' ')}, ${p.validity} days, by ${ca.name}` });
    }
    changes.push(...prefixed(p.certPath, certAttrs));
    if (writeCa) changes.push({ what: `write CA certificate ${p.caPath}`, to: ca.name });
    changes.push(...prefixed(p.caPath ?? '', caAttrs));
    const data: CertificateData = {
      ca, sans, commonName, reasons, newKey,
      keyAttrs: keyAttrs.length > 0, certAttrs: certAttrs.length > 0, certPem: cert.content?.toString('utf8'), writeCa, caAttrs: caAttrs.length > 0,
    };
    if (!nonEmpty(changes)) return unchanged(goodReason(onHost.cert as IssuedCertificate, ca));
    return { changes, data, observed: { reasons, sans: sans.map(formatSan), key: onHost.keyPublic ?? null, cert: cert.sha256 ?? null } };
  },
  async apply(host, p, c) {
    const d = c.data;
    const attrs = fileAttrs(p);
    if (d.newKey) await generateKey(host, p.keyPath, { ...attrs, mode: p.keyMode });
    else if (d.keyAttrs) await setKeyAttrs(host, p.keyPath, { ...attrs, mode: p.keyMode });
    if (d.reasons.length) {
      const csr = await runChecked(host, sh`openssl req -new -key ${p.keyPath} -subj ${`/CN=${d.commonName}`}`, `make a CSR from ${p.keyPath}`);
      // The only moment the CA key is decrypted.
      const pem = await signCsr(csr.stdout, { certPem: d.ca.certPem, key: await d.ca.key() }, { commonName: d.commonName, sans: d.sans, days: p.validity });
      await host.put(p.certPath, pem, { ...attrs, mode: p.mode });
    } else if (d.certAttrs) {
      // Public content: attributes are set by rewriting the same bytes (put() never follows a user's path).
      await host.put(p.certPath, d.certPem ?? '', { ...attrs, mode: p.mode });
    }
    if (p.caPath && (d.writeCa || d.caAttrs)) await host.put(p.caPath, d.ca.certPem, { ...attrs, mode: p.mode });
  },
});

function fileAttrs(p: CertificateParams): FileAttrs {
  return { owner: p.owner, group: p.group };
}

const prefixed = (path: string, changes: Change[]): Change[] => changes.map((ch) => ({ ...ch, what: `${ch.what} of ${path}` }));

function goodReason(cert: IssuedCertificate, ca: InventoryCa): string {
  return `valid until ${isoDate(cert.notAfter)}, CN=${cert.commonName}, ${cert.sans.map(formatSan).join(' ')}, issued by ${ca.name}`;
}

/**
 * Key material lives only in a directory nobody but root can change (pinned: src/shell/pinned-dir.ts),
 * so no user can swap the key, or its temp file, for a symlink between our steps.
 */
function inKeyDir(keyPath: string, steps: string[]): string {
  const dir = posix.dirname(keyPath);
  return [PINNED_DIR_FUNCTIONS, sh`infra_walk ${dir}`, 'infra_own_dir 0', ...steps].join('\n');
}

/** A new EC P-256 key, made by openssl in a fresh 0600 temp file beside the key, given its owner and mode, then renamed. */
async function generateKey(host: HostContext, keyPath: string, a: FileAttrs): Promise<void> {
  const t = raw('"$t"');
  const script = inKeyDir(keyPath, [
    `t=$(mktemp ./.infra-key.XXXXXX) || exit 1`,
    `trap 'rm -f "$t"' EXIT`,
    sh`(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ${t}) || exit 1`,
    ...(a.owner ? [sh`chown -h ${a.owner} ${t} || exit 1`] : []),
    ...(a.group ? [sh`chgrp -h ${a.group} ${t} || exit 1`] : []),
    sh`chmod ${a.mode ?? '0600'} ${t} && mv -f -T ${t} ${`./${posix.basename(keyPath)}`} && trap - EXIT`,
  ]);
  await runChecked(host, script, `generate a key at ${keyPath}`);
}

/** Owner and mode of an existing key, set in place (its content never leaves the host). */
async function setKeyAttrs(host: HostContext, keyPath: string, a: FileAttrs): Promise<void> {
  const name = `./${posix.basename(keyPath)}`;
  const script = inKeyDir(keyPath, [
    sh`[ -f ${name} ] && [ ! -L ${name} ] || infra_refuse ${`${keyPath} is not a regular file`}`,
    ...(a.owner ? [sh`chown -h ${a.owner} ${name} || exit 1`] : []),
    ...(a.group ? [sh`chgrp -h ${a.group} ${name} || exit 1`] : []),
    ...(a.mode ? [sh`chmod ${a.mode} ${name} || exit 1`] : []),
  ]);
  await runChecked(host, script, `set owner and mode of ${keyPath}`);
}

// ---------------------------------------------------------------- tls.caTrust

const TRUST_DIR = '/usr/local/share/ca-certificates';

const pemCertificate = z.string().refine((pem) => /-----BEGIN CERTIFICATE-----/.test(pem) && (pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0) === 1 && readCertificate(pem) !== undefined, {
  message: 'must be exactly one PEM certificate (split a bundle into one task per certificate)',
});

const caTrustParams = z
  .object({
    /** File name in /usr/local/share/ca-certificates (without .crt). */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, ".", "_" and "-"'),
    /** The CA certificate, PEM. */
    certificate: pemCertificate,
  })
  .strict();
export type CaTrustParams = z.infer<typeof caTrustParams>;

/** update-ca-certificates links each trusted file into /etc/ssl/certs as <name>.pem. */
const linkOf = (name: string): string => `/etc/ssl/certs/${name}.pem`;

export const caTrust = defineModule<CaTrustParams, z.input<typeof caTrustParams>, Check<WriteData>>({
  name: 'tls.caTrust',
  params: caTrustParams,
  describe: (p) => p.name,
  async check(host, p) {
    const path = `${TRUST_DIR}/${p.name}.crt`;
    const content = Buffer.from(p.certificate.endsWith('\n') ? p.certificate : `${p.certificate}\n`, 'utf8');
    const file = await checkWholeFile(host, { path, content, mode: '0644', owner: 'root', group: 'root' });
    const linked = (await host.run(sh`[ -L ${linkOf(p.name)} ] && [ -e ${linkOf(p.name)} ]`)).code === 0;
    const subject = oneLine(readCertificate(p.certificate)!.x509.subject);
    if (file.changes.length === 0 && linked) return unchanged(`${subject} is trusted (${path})`);
    const changes: [Change, ...Change[]] = hasChanges(file) ? file.changes : [{ what: 'add to the trust store', to: subject }];
    return { changes, diff: file.diff, data: file };
  },
  async apply(host, _p, c) {
    const file = c.data;
    if (hasChanges(file)) await applyWholeFile(host, file);
    await runChecked(host, 'update-ca-certificates', 'update-ca-certificates');
  },
});
