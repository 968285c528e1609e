/**
 * Optional TLS for clients, replication and Sentinel (pure). Every TLS decision of the role
 * lives here, so the internal PKI plugs in at one place: the certificate files it issues are
 * the paths below. With TLS on, the plaintext port is closed (port 0) and the same port
 * number speaks TLS; replicas and Sentinels connect with TLS too.
 */
import { z } from 'infra';

const path = z.string().regex(/^\/./, 'an absolute path');

export const tlsVars = z
  .object({
    enabled: z.boolean().default(false),
    /**
     * This host's certificate and key (the key readable by the redis user only), and the CA
     * that signs every member. Not under /etc/redis (2770 redis): the exporter (user
     * prometheus) must read the CA certificate too.
     */
    cert_file: path.default('/etc/ssl/redis/redis.crt'),
    key_file: path.default('/etc/ssl/redis/redis.key'),
    ca_file: path.default('/etc/ssl/redis/ca.crt'),
    /** Ask clients for a certificate too: no (password only), optional, yes. */
    auth_clients: z.enum(['no', 'optional', 'yes']).default('no'),
  })
  .strict()
  .default({});

interface Vars {
  redis_port: number;
  redis_sentinel_port: number;
  redis_tls: z.infer<typeof tlsVars>;
}

const common = (v: Vars): Record<string, string> => ({
  'tls-cert-file': v.redis_tls.cert_file,
  'tls-key-file': v.redis_tls.key_file,
  'tls-ca-cert-file': v.redis_tls.ca_file,
  'tls-auth-clients': v.redis_tls.auth_clients,
  'tls-replication': 'yes',
});

/** redis.conf directives (they override the plaintext port). */
export function redisTlsSettings(v: Vars): Record<string, string> {
  if (!v.redis_tls.enabled) return {};
  return { port: '0', 'tls-port': String(v.redis_port), ...common(v) };
}

/** sentinel.conf directives: Sentinel listens with TLS and reaches the servers with it (tls-replication). */
export function sentinelTlsSettings(v: Vars): Record<string, string> {
  if (!v.redis_tls.enabled) return {};
  return { port: '0', 'tls-port': String(v.redis_sentinel_port), ...common(v) };
}

/** How redis-cli (infra, on-call) and the exporter connect. */
export function clientTls(v: Vars): { caFile: string } | undefined {
  return v.redis_tls.enabled ? { caFile: v.redis_tls.ca_file } : undefined;
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
  return { addr: `rediss://${host}:${v.redis_port}`, args: ` -tls-ca-cert-file=${v.redis_tls.ca_file}` };
}
