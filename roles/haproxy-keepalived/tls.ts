/**
 * Where the frontend's certificate comes from — the one place that knows. `vault`: a
 * certificate chain and its key from the inventory's vault (production: a public CA's
 * certificate). HAProxy reads the chain from CERT_PATH and, since the PEM holds no key,
 * the key from CERT_PATH + ".key" (ssl-load-extra-files, on by default).
 */
import { z, files, Secret, type Task } from 'infra';

export const CERT_DIR = '/etc/haproxy/certs';
export const CERT_PATH = `${CERT_DIR}/site.pem`;
export const KEY_PATH = `${CERT_PATH}.key`;

const reveal = (v: string | Secret): string => (typeof v === 'string' ? v : v.reveal());

const vaultValue = z.custom<Secret>((v) => v instanceof Secret, 'must be a vault value (!vault ..., made with `infra vault encrypt-string --stdin --keep-trailing-newline`)');

export const tlsSchema = z.discriminatedUnion('source', [
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
export function tlsTasks(tls: TlsSource, notify: string): Task[] {
  const cert = typeof tls.cert === 'string' ? text(tls.cert) : new Secret(text(tls.cert), 'tls certificate');
  return [
    files.directory({ path: CERT_DIR, mode: '0750', owner: 'root', group: 'haproxy' }),
    files.file({ path: CERT_PATH, content: cert, mode: '0640', owner: 'root', group: 'haproxy', notify }),
    files.file({ path: KEY_PATH, content: new Secret(text(tls.key), 'tls key'), mode: '0640', owner: 'root', group: 'haproxy', notify }),
  ];
}
