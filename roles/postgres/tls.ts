/**
 * TLS for everything the role runs (PostgreSQL, pgbouncer, pgBackRest's TLS server and
 * client): one key and certificate per host, and the CA that signed them, at fixed paths.
 * The certificate's SANs carry the host's name and the address clients use
 * (sslmode=verify-full); pgBackRest authorizes a peer by its certificate's CN (the host name).
 *
 * Source: `postgres_tls` (CA, host certificate, key from the vault). This is the one place
 * that changes when the internal PKI issues the certificates instead.
 */
import { files, type Task } from 'infra';
import type { PostgresVars } from './vars.js';

export const TLS = {
  dir: '/etc/postgresql/tls',
  ca: '/etc/postgresql/tls/ca.crt',
  cert: '/etc/postgresql/tls/server.crt',
  key: '/etc/postgresql/tls/server.key',
} as const;

/** `notify`: the services that must re-read the files when they change. */
export function tlsTasks(v: PostgresVars, notify: string[]): Task[] {
  const tls = v.postgres_tls!;
  const owned = { owner: 'postgres', group: 'postgres' };
  return [
    files.directory({ path: TLS.dir, mode: '0750', ...owned }),
    files.file({ path: TLS.ca, content: ensureNewline(tls.ca_cert), mode: '0644', ...owned, notify }),
    files.file({ path: TLS.cert, content: ensureNewline(tls.cert), mode: '0644', ...owned, notify }),
    files.file({ path: TLS.key, content: tls.key, mode: '0600', ...owned, notify }),
  ];
}

const ensureNewline = (pem: string): string => (pem.endsWith('\n') ? pem : `${pem}\n`);
