/**
 * The monitoring role's variables, in one schema: Prometheus (what to scrape, how long to
 * keep it), the alert thresholds, Alertmanager (who gets what), central logs, and the Grafana
 * stack. Every one has a default except the secrets, which come from the vault.
 */
import { z, vaultSecret } from 'infra';

const port = z.number().int().min(1).max(65535);
/** A Prometheus duration: 30s, 5m, 1h30m, 15d. */
export const duration = z.string().regex(/^(\d+(ms|s|m|h|d|w|y))+$/, 'a Prometheus duration such as 30s, 5m, 1h30m, 15d');
/** Names that reach YAML and PromQL unquoted. */
const name = z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'letters, digits, "_" and "-"');
const urlPath = z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, 'a path such as /metrics');

/** One exporter scraped on every host of a group. */
const exporter = z
  .object({
    group: z.string().min(1).describe('Inventory group (or host pattern) whose hosts run it'),
    port: port.describe('Its port, unless port_var says otherwise on a host'),
    port_var: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/)
      .optional()
      .describe("The host variable holding the port when the exporter's own role lets it change (dotted path: postgres_exporter.port): each target is scraped where its host says"),
    path: urlPath.default('/metrics').describe('The metrics path'),
  })
  .strict();
export type Exporter = z.output<typeof exporter>;

/** What the service roles of this repository expose (ROLES.md "Exporters"). */
export const DEFAULT_EXPORTERS: Record<string, z.input<typeof exporter>> = {
  node: { group: 'all', port: 9100, port_var: 'node_exporter_port' },
  postgres: { group: 'postgres', port: 9187, port_var: 'postgres_exporter.port' },
  redis: { group: 'redis', port: 9121, port_var: 'redis_exporter_port' },
  haproxy: { group: 'lb', port: 8404, port_var: 'haproxy_stats_port', path: '/metrics' },
  // The api role's nginx exporter (nginx's stub_status).
  nginx: { group: 'api', port: 9113, port_var: 'api_exporter_port' },
};

const webhook = z
  .object({
    url: vaultSecret('alertmanager_receivers.<team>.<pager|chat>.url', { file: 'group_vars/monitoring.yaml' }).describe("The receiver's webhook URL (it usually holds a token): from the vault"),
    token: vaultSecret('alertmanager_receivers.<team>.<pager|chat>.token', { file: 'group_vars/monitoring.yaml' }).optional().describe('A bearer token, when the receiver wants one in a header: from the vault'),
  })
  .strict();

export const vars = z.object({
  // ------------------------------------------------------------- Prometheus
  prometheus_port: port.default(9090).describe("Prometheus's port, on the private address"),
  prometheus_retention: duration.default('15d').describe('How long samples are kept'),
  prometheus_retention_size: z.string().regex(/^\d+(B|KB|MB|GB|TB|PB)$/, 'a size such as 40GB').optional().describe('And at most this much disk (oldest blocks go first), e.g. 40GB'),
  prometheus_scrape_interval: duration.default('15s').describe('How often every target is scraped'),
  prometheus_evaluation_interval: duration.default('15s').describe('How often the alert rules are evaluated'),
  prometheus_exporters: z
    .record(name, z.union([exporter, z.literal(false)]))
    .default({})
    .transform((v) => {
      const merged: Record<string, Exporter> = {};
      for (const [job, e] of Object.entries({ ...DEFAULT_EXPORTERS, ...v })) if (e !== false) merged[job] = exporter.parse(e);
      return merged;
    })
    .describe('Exporters by job name, merged over the defaults (node on all; postgres 9187, redis 9121, haproxy 8404, nginx 9113 on the groups postgres, redis, lb, api); `false` removes one. A group missing from the inventory is an error; an empty one is a job with no targets'),
  prometheus_sentinels: z
    .union([
      z
        .object({
          group: z.string().min(1).default('sentinel').describe('The Sentinels\' group'),
          port: port.default(26379).describe("Sentinel's port, unless port_var says otherwise on a host"),
          port_var: z.string().default('redis_sentinel_port').describe('The host variable holding the Sentinel port'),
          via: name.default('redis').describe('The exporter job whose hosts probe the Sentinels'),
        })
        .strict(),
      z.literal(false),
    ])
    .default({})
    .describe("Redis Sentinels, scraped through a Redis host's exporter (its multi-target /scrape endpoint): the Sentinel quorum alerts. `false` turns it off"),

  // ------------------------------------------------------------- blackbox
  blackbox_vip_group: z.string().min(1).default('lb').describe('The group whose `vip` is the public endpoint probed (ICMP and HTTPS)'),
  blackbox_https_path: urlPath.default('/health').describe('Path probed over HTTPS on the VIP (2xx expected)'),
  blackbox_port: port.default(9115).describe("The blackbox exporter's port (on 127.0.0.1)"),

  // ------------------------------------------------------------- alert rules
  monitoring_runbook_url: z
    .string()
    .regex(/^[^\s"']+$/)
    .default('https://git.example.com/ops/infra/-/blob/main/docs/runbooks')
    .describe("Where the runbooks are (docs/runbooks in this repository, as on-call opens it): every alert's runbook_url is this URL followed by /AlertName.md"),
  monitoring_alerts: z
    .object({
      host_down_for: duration.default('2m').describe('node exporter unreachable this long: HostDown (critical)'),
      target_down_for: duration.default('5m').describe('Any other target unreachable this long: TargetDown (warning). Longer than host_down_for, so a dead host inhibits it'),
      disk_warning_percent: z.number().min(1).max(100).default(85).describe('A filesystem fuller than this: DiskSpaceLow (warning)'),
      disk_critical_percent: z.number().min(1).max(100).default(95).describe('A filesystem fuller than this: DiskSpaceLow (critical)'),
      memory_available_percent: z.number().min(1).max(100).default(10).describe('MemAvailable below this share of RAM: MemoryPressure'),
      pg_lag_warning: duration.default('1m').describe('A replica replaying further behind than this: PostgresReplicationLag warning (the RPO is 5 minutes)'),
      pg_lag_critical: duration.default('2m').describe('… critical'),
      backup_max_age_hours: z.number().int().min(1).default(26).describe('The newest backup (any type) older than this many hours: BackupTooOld'),
      cert_expiry_days: z.number().int().min(1).default(14).describe('A certificate expiring within this many days: CertificateExpiringSoon'),
      security_updates_for: duration.default('7d').describe('Security updates pending this long: SecurityUpdatesPending'),
      reboot_required_for: duration.default('1d').describe('A reboot required this long: RebootRequired'),
    })
    .strict()
    .default({})
    .describe('Alert thresholds'),

  // ------------------------------------------------------------- Alertmanager
  alertmanager_port: port.default(9093).describe("Alertmanager's port, on the private address"),
  alertmanager_cluster_port: port.default(9094).describe('Gossip between the Alertmanagers when the group has more than one host'),
  alertmanager_retention: duration.default('120h').describe('Silences and notification state kept this long (the data directory persists)'),
  alertmanager_receivers: z
    .record(name, z.object({ pager: webhook.optional(), chat: webhook.optional() }).strict())
    .default({})
    .describe("Receivers by team (the alerts' `team` label): critical alerts go to `pager`, warnings to `chat`, info nowhere. Webhooks, URL and token from the vault. None: alerts are only in the Alertmanager UI (reported as skipped)"),
  alertmanager_default_team: name.default('platform').describe("Alerts of a team without receivers go to this team's"),
  alertmanager_timing: z
    .object({
      group_wait: duration.default('30s').describe('Wait this long to group the first alerts of a group'),
      group_interval: duration.default('5m').describe('Wait this long before sending what changed in a group'),
      critical_repeat: duration.default('30m').describe('A critical alert is sent again this often until it resolves (escalation by repetition)'),
      warning_repeat: duration.default('4h').describe('A warning is sent again this often'),
      resolve_timeout: duration.default('5m').describe('An alert no longer sent by Prometheus resolves after this long'),
    })
    .strict()
    .default({})
    .describe('Grouping and repetition'),

  // ------------------------------------------------------------- central logs
  journal_remote_port: port.default(19532).describe('systemd-journal-remote: every other host uploads its journal here over TLS'),
  journal_remote_max_use: z.string().regex(/^\d+[KMGT]?$/, 'a size such as 20G').default('20G').describe('The received journals are vacuumed daily down to this size (archived files only)'),
  journal_remote_max_age: z.string().regex(/^\d+(d|w|month|year)$/, 'a journalctl time such as 30d, 6w, 3month').default('30d').describe('… and this age'),

  // ------------------------------------------------------------- Grafana stack
  grafana_stack: z
    .object({
      enabled: z.boolean().default(true).describe('false where the repository cannot be reached: the tasks are reported skipped with `reason`'),
      reason: z.string().optional().describe('Why the stack is off (shown in the run)'),
      apt_url: z.string().url().default('https://apt.grafana.com').describe("Grafana's apt repository"),
      key_fingerprint: z.string().regex(/^[0-9A-F]{40}$/, '40 hex digits in capitals').optional().describe("The repository key's fingerprint, checked when the key is fetched (recommended)"),
      loki_port: port.default(3100).describe("Loki's HTTP port, on the private address"),
      loki_retention: duration.default('744h').describe('How long Loki keeps logs'),
      grafana_port: port.default(3000).describe("Grafana's port, on the private address"),
    })
    .strict()
    .default({})
    .describe("Loki, Alloy and Grafana from Grafana's apt repository, on the monitoring host"),
  grafana_admin_password: vaultSecret('grafana_admin_password', { file: 'group_vars/monitoring.yaml' })
    .optional()
    .describe("Grafana's admin password, from the vault; unset: one is made on the host (/etc/grafana/admin-password)"),
});
export type MonitoringVars = z.output<typeof vars>;
