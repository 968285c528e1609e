/**
 * The HAProxy side of the role as pure functions: the variables' schema and the model the
 * haproxy.cfg template renders (backend servers from an inventory group, who may read the
 * stats, connection limits sized from the host's memory).
 */
import { z, UserError, members, privateAddress, type HostView, type Member } from 'infra';
import { CERT_PATH } from './tls.js';

/** An HAProxy time: 500ms, 10s, 1m, 2h, 1d. */
const time = z.string().regex(/^\d+(us|ms|s|m|h|d)$/, 'an HAProxy time with its unit, such as 500ms, 10s, 1m');
const port = z.number().int().min(1).max(65535);
/** Group or host names, IPv4 addresses or CIDRs. */
const sources = z.array(z.string().regex(/^[A-Za-z0-9_.:/*-]+$/, 'a group or host name, an IPv4 address or a CIDR'));
/** Words that reach haproxy.cfg unquoted: no spaces, quotes or comment characters. */
const token = (what: string) => z.string().regex(/^[A-Za-z0-9_.:+!@=-]+$/, `${what}: letters, digits and _ . : + ! @ = - only`);

export const haproxyVars = z.object({
  haproxy_http_port: port.default(80),
  haproxy_https_port: port.default(443),
  haproxy_tls_min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  /** TLS 1.2 ciphers (Mozilla "intermediate", ECDHE only: forward secrecy, no DH parameters). */
  haproxy_tls_ciphers: token('haproxy_tls_ciphers').default(
    'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305',
  ),
  /** TLS 1.3 cipher suites. */
  haproxy_tls_ciphersuites: token('haproxy_tls_ciphersuites').default('TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256'),
  /** Strict-Transport-Security on every HTTPS response. */
  haproxy_hsts: z.string().regex(/^max-age=\d+(; ?[A-Za-z]+)*$/, 'like "max-age=63072000" or "max-age=63072000; includeSubDomains"').default('max-age=63072000'),
  haproxy_backend: z
    .object({
      /** The inventory group whose hosts are the servers. */
      group: z.string().min(1).default('api'),
      /** The port the servers listen on (nginx in front of the API). */
      port: port.default(80),
      health_path: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, 'a path such as /health').default('/health'),
      /** Host header of the health check (default: the server's name). */
      health_host: z.string().regex(/^[A-Za-z0-9.-]+$/).optional(),
    })
    .strict()
    .default({}),
  haproxy_balance: z.enum(['roundrobin', 'leastconn', 'static-rr', 'first', 'source', 'random']).default('roundrobin'),
  haproxy_health: z.object({ interval: time.default('2s'), fall: z.number().int().min(1).default(3), rise: z.number().int().min(1).default(2) }).strict().default({}),
  haproxy_timeouts: z
    .object({
      connect: time.default('5s'),
      client: time.default('30s'),
      server: time.default('30s'),
      /** The whole request headers must arrive within this (slowloris). */
      http_request: time.default('10s'),
      http_keep_alive: time.default('5s'),
      queue: time.default('30s'),
      check: time.default('3s'),
    })
    .strict()
    .default({}),
  /** Client connections the frontend accepts; default from the host's memory (maxconnFor). */
  haproxy_maxconn: z.number().int().min(100).optional(),
  haproxy_rate_limit: z
    .object({
      /** Requests per client address per `period`; beyond it: 429. */
      requests: z.number().int().min(1).default(100),
      period: time.default('10s'),
      /** Concurrent connections per client address; beyond it the connection is refused. */
      connections: z.number().int().min(1).default(100),
      /** Never limited (synthetic monitoring, offices): groups, hosts, IPs, CIDRs. */
      exempt: sources.default([]),
    })
    .strict()
    .default({}),
  /** Largest request body (Content-Length) accepted; beyond it: 413. */
  haproxy_max_body_bytes: z.number().int().min(1).default(10 * 1024 * 1024),
  /** Path prefixes answered 403 at the edge. */
  haproxy_deny_paths: z.array(z.string().regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%\/-]*$/, 'a path prefix such as /.git')).default(['/.git', '/.env', '/.svn', '/.ht']),
  /** Methods answered 405 at the edge. */
  haproxy_deny_methods: z.array(z.string().regex(/^[A-Z]+$/, 'an HTTP method in capitals')).default(['TRACE', 'TRACK', 'CONNECT']),
  /** Stats page (/stats) and Prometheus metrics (/metrics), on the host's private address. */
  haproxy_stats_port: port.default(8404),
  /** Who may read them (the firewall opening is separate: group_vars firewall.allow). */
  haproxy_stats_allow: sources.default(['monitoring']),
});

/** Where the admin socket is: the patch run and the api role drain servers through it. */
export const ADMIN_SOCKET = '/run/haproxy/admin.sock';
/** Runtime server state (drain, maintenance, health) kept across reloads. */
export const SERVER_STATE_FILE = '/var/lib/haproxy/server-state';

type HaproxyVars = z.output<typeof haproxyVars>;

const CIDR = /^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/;

/** Names (groups, hosts) become the addresses other hosts see; addresses stay. */
export function addressesOf(names: string[], hosts: (pattern: string) => HostView[]): string[] {
  const out = names.flatMap((n) => (CIDR.test(n) ? [n] : hosts(n).map(privateAddress)));
  return [...new Set(out)].sort();
}

/**
 * Connections the host can hold: a quarter of its memory at ~64 kB per connection (two
 * 16 kB buffers each side, TLS state, stick-table entries), within [2000, 200000].
 */
export function maxconnFor(memoryMb: number): number {
  const n = Math.floor((memoryMb * 1024) / 4 / 64);
  return Math.min(200_000, Math.max(2_000, Math.floor(n / 1000) * 1000));
}

/** One server per host of the group, named after the host (`set server api/api1 state drain`). */
export function backendServers(backend: { group: string; port: number }, hosts: (pattern: string) => HostView[]): Member[] {
  try {
    return members(hosts, backend.group, { port: backend.port });
  } catch (e) {
    throw new UserError(`haproxy_backend.group "${backend.group}" is not a group or host of the inventory`, {
      hint: 'set haproxy_backend.group to the group of the API servers (e.g. api)',
      cause: e,
    });
  }
}

/** Everything haproxy.cfg.hbs renders besides the variables themselves. */
export function haproxyModel(v: HaproxyVars, self: HostView, memoryMb: number, hosts: (pattern: string) => HostView[]) {
  return {
    certPath: CERT_PATH,
    adminSocket: ADMIN_SOCKET,
    serverStateFile: SERVER_STATE_FILE,
    maxconn: v.haproxy_maxconn ?? maxconnFor(memoryMb),
    statsAddress: privateAddress(self),
    // Loopback always: on-call reads the stats from the host itself.
    statsSources: ['127.0.0.1', ...addressesOf(v.haproxy_stats_allow, hosts)],
    rateExempt: addressesOf(v.haproxy_rate_limit.exempt, hosts),
    servers: backendServers(v.haproxy_backend, hosts),
  };
}
