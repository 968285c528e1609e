/**
 * Where the frontend's certificate comes from — the one place that knows. HAProxy reads the
 * chain from CERT_PATH and, since that PEM holds no key, the key from CERT_PATH + ".key"
 * (ssl-load-extra-files, on by default). Either source notifies the reload.
 *
 *   pki    the inventory's internal CA (`infra pki init`): a key made on the host, a
 *          certificate for the VIP and `names` (plus the host's own names), renewed before
 *          it expires. The lab; any deployment whose clients trust the internal CA.
 *   vault  a certificate chain and its key from the vault: production's public certificate.
 */
import { z, files, tls, Secret, type Task } from 'infra';

export const CERT_DIR = '/etc/haproxy/certs';
export const CERT_PATH = `${CERT_DIR}/site.pem`;
export const KEY_PATH = `${CERT_PATH}.key`;
/** pki: the CA beside them, for on-call (`openssl verify -CAfile ca.crt site.pem`). */
export const CA_PATH = `${CERT_DIR}/ca.crt`;

const reveal = (v: string | Secret): string => (typeof v === 'string' ? v : v.reveal());

const vaultValue = z.custom<Secret>((v) => v instanceof Secret, 'must be a vault value (!vault ..., made with `infra vault encrypt-string --stdin --keep-trailing-newline`)');

export const tlsSchema = z.discriminatedUnion('source', [
  z
    .object({
      source: z.literal('pki'),
      /** DNS names clients use (the site's name); the VIP is always in the certificate. */
      names: z.array(z.string().regex(/^[A-Za-z0-9*.-]+$/, 'a DNS name')).default([]),
    })
    .strict(),
  z
    .object({
      source: z.literal('vault'),
      /** The certificate chain (leaf first), PEM; public, so plain text or a vault value. */
      cert: z.union([z.string(), vaultValue]).refine((v) => reveal(v).includes('-----BEGIN CERTIFICATE-----'), 'cert must be a PEM certificate chain'),
      /** Its private key, PEM, from the vault only. */
      key: vaultValue.refine((v) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(v.reveal()), 'key must be a PEM private key'),
    })
    .strict(),
]);
export type TlsSource = z.infer<typeof tlsSchema>;

const text = (v: string | Secret): string => `${reveal(v).trimEnd()}\n`;

/** The tasks that put the certificate and key where haproxy.cfg says (CERT_PATH, KEY_PATH). */
export function tlsTasks(source: TlsSource, vip: string, notify: string): Task[] {
  const dir = files.directory({ path: CERT_DIR, mode: '0750', owner: 'root', group: 'haproxy' });
  if (source.source === 'pki') {
    return [
      dir,
      tls.certificate({ certPath: CERT_PATH, keyPath: KEY_PATH, caPath: CA_PATH, owner: 'root', group: 'haproxy', keyMode: '0640', mode: '0640', sans: [vip, ...source.names], notify }),
    ];
  }
  const cert = typeof source.cert === 'string' ? text(source.cert) : new Secret(text(source.cert), 'tls certificate');
  return [
    dir,
    files.file({ path: CERT_PATH, content: cert, mode: '0640', owner: 'root', group: 'haproxy', notify }),
    files.file({ path: KEY_PATH, content: new Secret(text(source.key), 'tls key'), mode: '0640', owner: 'root', group: 'haproxy', notify }),
  ];
}
