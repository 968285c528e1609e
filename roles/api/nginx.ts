/**
 * Nginx in front of PM2 (pure: vars + inventory → tasks): one site in conf.d, validated as
 * part of the whole configuration before it replaces anything, reloaded (never restarted) on
 * change; the client address taken from X-Forwarded-For only when the load balancers send it;
 * stub_status on loopback for the Prometheus exporter, which listens on the private address.
 */
import { files, privateAddress, systemd, z, type HostView, type Task } from 'infra';

export const SITE = '/etc/nginx/conf.d/api.conf';
/** Installed by the role: `nginx -t` on a copy of the whole configuration with the candidate site in place. */
export const CHECK_SCRIPT = '/usr/local/sbin/infra-nginx-check-site';
export const STATUS_PORT = 8080;

const nginxTime = z.string().regex(/^\d+(ms|s|m|h)?$/, 'an nginx time such as 30s or 1m');
const nginxSize = z.string().regex(/^\d+[kKmMgG]?$/, 'an nginx size such as 1m or 512k');

export const nginxVars = z
  .object({
    port: z.number().int().min(1).max(65535).default(80),
    client_max_body_size: nginxSize.default('1m'),
    client_header_timeout: nginxTime.default('10s'),
    client_body_timeout: nginxTime.default('10s'),
    send_timeout: nginxTime.default('30s'),
    keepalive_timeout: nginxTime.default('65s'),
    proxy_connect_timeout: nginxTime.default('5s'),
    proxy_read_timeout: nginxTime.default('30s'),
    proxy_send_timeout: nginxTime.default('30s'),
    gzip_types: z.array(z.string().regex(/^[a-z]+\/[a-z0-9.+-]+$/)).default(['application/json', 'text/plain', 'text/css', 'application/javascript']),
    /** Upstream keep-alive connections to PM2 per nginx worker. */
    upstream_keepalive: z.number().int().min(0).default(16),
  })
  .strict()
  .default({});
export type NginxVars = z.output<typeof nginxVars>;

export interface SiteData {
  nginx: NginxVars;
  appPort: number;
  healthPath: string;
  realIpFrom: string[];
}

/** The load balancers' addresses (what they connect from), then any extra addresses/CIDRs. */
export function realIpSources(lbs: HostView[], extra: string[]): string[] {
  return [...new Set([...lbs.map(privateAddress), ...extra])];
}

export function nginxTasks(site: SiteData, exporter: { listen: string }): Task[] {
  return [
    files.copy({ src: 'nginx-check-site', dest: CHECK_SCRIPT, mode: '0755', owner: 'root', group: 'root' }),
    // Debian's default site is also `default_server` on port 80: it goes first, or ours cannot validate.
    files.absent({ path: '/etc/nginx/sites-enabled/default', notify: 'reload nginx' }),
    files.template({
      src: 'nginx-site.conf.hbs',
      dest: SITE,
      mode: '0644',
      owner: 'root',
      group: 'root',
      validate: `${CHECK_SCRIPT} %s ${SITE}`,
      vars: { site, statusPort: STATUS_PORT },
      notify: 'reload nginx',
    }),
    systemd.service({ name: 'nginx', enabled: true, state: 'started' }),
    // Prometheus exporter (Debian's package): nginx's stub_status, served on the private address.
    files.template({
      src: 'nginx-exporter.default.hbs',
      dest: '/etc/default/prometheus-nginx-exporter',
      mode: '0644',
      owner: 'root',
      group: 'root',
      vars: { scrapeUri: `http://127.0.0.1:${STATUS_PORT}/stub_status`, listen: exporter.listen },
      notify: 'restart nginx exporter',
    }),
    systemd.service({ name: 'prometheus-nginx-exporter', enabled: true, state: 'started' }),
  ];
}

export const nginxPackages = ['nginx', 'prometheus-nginx-exporter'];

export const nginxHandlers = {
  'reload nginx': systemd.reload('nginx'),
  'restart nginx exporter': systemd.restart('prometheus-nginx-exporter'),
};

