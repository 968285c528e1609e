/**
 * Optional TLS for clients, replication and Sentinel (pure) — every TLS decision of the role.
 * The certificates come from the inventory's internal CA (`infra pki init`): a key made on the
 * host, a certificate naming the host's addresses, renewed before it expires. With TLS on,
 * the plaintext port is closed (port 0) and the same port number speaks TLS; replicas and
 * Sentinels connect with TLS too (tls-replication).
 */
import { z, files, tls, type Task } from 'infra';

/** Not under /etc/redis (2770 redis): the exporter (user prometheus) reads the CA certificate. */
export const TLS_DIR = '/etc/ssl/redis';
export const CERT_FILE = `${TLS_DIR}/redis.crt`;
export const KEY_FILE = `${TLS_DIR}/redis.key`;
export const CA_FILE = `${TLS_DIR}/ca.crt`;

export const tlsVars = z.object({ enabled: z.boolean().default(false) }).strict().default({});

interface Vars {
  redis_port: number;
  redis_sentinel_port: number;
  redis_tls: z.infer<typeof tlsVars>;
}

const common: Record<string, string> = {
  'tls-cert-file': CERT_FILE,
  'tls-key-file': KEY_FILE,
  'tls-ca-cert-file': CA_FILE,
  // Clients authenticate with their ACL user; TLS encrypts and proves the server.
  'tls-auth-clients': 'no',
  'tls-replication': 'yes',
};

/** The host's certificate; a renewed one is read at restart (`notify`: the services that use it). */
export function tlsTasks(v: Vars, notify: string[]): Task[] {
  if (!v.redis_tls.enabled) return [];
  return [
    files.directory({ path: TLS_DIR, mode: '0755', owner: 'root', group: 'root' }),
    tls.certificate({ certPath: CERT_FILE, keyPath: KEY_FILE, caPath: CA_FILE, owner: 'root', group: 'redis', keyMode: '0640', mode: '0644', notify }),
  ];
}

/** redis.conf directives (they override the plaintext port). */
export function redisTlsSettings(v: Vars): Record<string, string> {
  return v.redis_tls.enabled ? { port: '0', 'tls-port': String(v.redis_port), ...common } : {};
}

/** sentinel.conf directives: Sentinel listens with TLS and reaches the servers with it (tls-replication). */
export function sentinelTlsSettings(v: Vars): Record<string, string> {
  return v.redis_tls.enabled ? { port: '0', 'tls-port': String(v.redis_sentinel_port), ...common } : {};
}

/** How redis-cli (infra, on-call) connects. */
export function clientTls(v: Vars): { caFile: string } | undefined {
  return v.redis_tls.enabled ? { caFile: CA_FILE } : undefined;
}

/**
 * Where local clients connect: loopback, or with TLS the private address (the certificate
 * names the host's addresses, not 127.0.0.1).
 */
export function localHost(v: Vars, self: string): string {
  return v.redis_tls.enabled ? self : '127.0.0.1';
}

/** The exporter's target URL and its extra arguments. */
export function exporterTarget(v: Vars, self: string): { addr: string; args: string } {
  const host = localHost(v, self);
  if (!v.redis_tls.enabled) return { addr: `redis://${host}:${v.redis_port}`, args: '' };
  return { addr: `rediss://${host}:${v.redis_port}`, args: ` -tls-ca-cert-file=${CA_FILE}` };
}
