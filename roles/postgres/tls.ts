/**
 * TLS for everything the role runs (PostgreSQL, pgbouncer, pgBackRest's TLS server and
 * client): one key and certificate per host, and the CA that signed them, at fixed paths —
 * the one place that knows where they come from:
 *
 *   pki    the inventory's internal CA (`infra pki init`): the key is made on the host, the
 *          certificate carries the host's name and addresses, and is renewed before it ends.
 *   vault  a CA certificate, the host's certificate and its key (a vault value), host_vars.
 *
 * The certificate's CN is the inventory host name: pgBackRest authorizes a peer by its CN.
 * Its SANs carry the address other hosts use as an IP (libpq's verify-full) and also as a DNS
 * name: pgBackRest 2.45 (Debian 12) matches a TLS peer against DNS names only.
 */
import { z, files, tls, Secret, type Task } from 'infra';

export const TLS = {
  dir: '/etc/postgresql/tls',
  ca: '/etc/postgresql/tls/ca.crt',
  cert: '/etc/postgresql/tls/server.crt',
  key: '/etc/postgresql/tls/server.key',
} as const;

const pem = (what: string) => z.string().includes('-----BEGIN CERTIFICATE-----', { message: `${what} must be a PEM certificate` });

export const tlsSchema = z.discriminatedUnion('source', [
  z.object({ source: z.literal('pki') }).strict(),
  z
    .object({
      source: z.literal('vault'),
      /** The CA clients verify the server with (sslmode=verify-full). */
      ca_cert: pem('ca_cert'),
      /** This host's certificate: CN = host name; SANs: name, address (IP and DNS). */
      cert: pem('cert'),
      key: z.custom<Secret>((v) => v instanceof Secret, 'key must be a vault value (infra vault encrypt-string --name postgres_tls.key --stdin)'),
    })
    .strict(),
]);
export type TlsSource = z.infer<typeof tlsSchema>;

const withNewline = (text: string): string => `${text.trimEnd()}\n`;

/** `notify`: the services that must re-read the files when they change. */
export function tlsTasks(source: TlsSource, address: string, notify: string[]): Task[] {
  const owned = { owner: 'postgres', group: 'postgres' };
  // root's, so no service user can swap entries where root makes and re-owns the key;
  // postgres reads through the group.
  const dir = files.directory({ path: TLS.dir, mode: '0750', owner: 'root', group: 'postgres' });
  if (source.source === 'pki') {
    return [dir, tls.certificate({ certPath: TLS.cert, keyPath: TLS.key, caPath: TLS.ca, ...owned, keyMode: '0600', mode: '0644', sans: address.includes(':') ? [] : [`DNS:${address}`], notify })];
  }
  return [
    dir,
    files.file({ path: TLS.ca, content: withNewline(source.ca_cert), mode: '0644', ...owned, notify }),
    files.file({ path: TLS.cert, content: withNewline(source.cert), mode: '0644', ...owned, notify }),
    files.file({ path: TLS.key, content: new Secret(withNewline(source.key.reveal()), 'tls key'), mode: '0600', ...owned, notify }),
  ];
}
