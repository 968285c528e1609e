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
    /** Inventory group (or host pattern) whose hosts run it. */
    group: z.string().min(1),
    port,
    /**
     * The host variable that holds the port when the exporter's own role lets it change
     * (dotted path: postgres_exporter.port): each target is scraped where its host says.
     */
    port_var: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/).optional(),
    path: urlPath.default('/metrics'),
  })
  .strict();
export type Exporter = z.output<typeof exporter>;

/** What the service roles of this repository expose (ROLES.md "Exporters"). */
export const DEFAULT_EXPORTERS: Record<string, z.input<typeof exporter>> = {
  node: { group: 'all', port: 9100, port_var: 'node_exporter_port' },
  postgres: { group: 'postgres', port: 9187, port_var: 'postgres_exporter.port' },
  redis: { group: 'redis', port: 9121, port_var: 'redis_exporter_port' },
  haproxy: { group: 'lb', port: 8404, port_var: 'haproxy_stats_port', path: '/metrics' },
};

const webhook = z
  .object({
    /** The receiver's URL (it usually holds a token): from the vault. */
    url: vaultSecret('alertmanager_receivers.<team>.<pager|chat>.url', { file: 'group_vars/monitoring.yaml' }),
    /** A bearer token, when the receiver wants one in a header: from the vault. */
    token: vaultSecret('alertmanager_receivers.<team>.<pager|chat>.token', { file: 'group_vars/monitoring.yaml' }).optional(),
  })
  .strict();

export const vars = z.object({
  // ------------------------------------------------------------- Prometheus
  prometheus_port: port.default(9090),
  /** How long samples are kept. */
  prometheus_retention: duration.default('15d'),
  /** And at most this much disk (oldest blocks go first), e.g. 40GB. */
  prometheus_retention_size: z.string().regex(/^\d+(B|KB|MB|GB|TB|PB)$/, 'a size such as 40GB').optional(),
  prometheus_scrape_interval: duration.default('15s'),
  prometheus_evaluation_interval: duration.default('15s'),
  /**
   * Exporters by job name, merged over DEFAULT_EXPORTERS (node, postgres, redis, haproxy);
   * `false` removes one. A group that is not in the inventory is an error; an empty one is
   * a job with no targets.
   */
  prometheus_exporters: z
    .record(name, z.union([exporter, z.literal(false)]))
    .default({})
    .transform((v) => {
      const merged: Record<string, Exporter> = {};
      for (const [job, e] of Object.entries({ ...DEFAULT_EXPORTERS, ...v })) if (e !== false) merged[job] = exporter.parse(e);
      return merged;
    }),
  /**
   * Redis Sentinels, scraped through the redis exporter of a Redis host (its multi-target
   * /scrape endpoint): Sentinel quorum alerts. `false` turns it off.
   */
  prometheus_sentinels: z
    .union([
      z
        .object({
          group: z.string().min(1).default('sentinel'),
          port: port.default(26379),
          port_var: z.string().default('redis_sentinel_port'),
          /** The exporter job whose hosts probe the Sentinels. */
          via: name.default('redis'),
        })
        .strict(),
      z.literal(false),
    ])
    .default({}),

  // ------------------------------------------------------------- blackbox
  /** The group whose `vip` is the public endpoint probed from outside the load balancers. */
  blackbox_vip_group: z.string().min(1).default('lb'),
  /** Path probed over HTTPS on the VIP (2xx expected). */
  blackbox_https_path: urlPath.default('/health'),
  blackbox_port: port.default(9115),

  // ------------------------------------------------------------- alert rules
  /** Where the runbooks are: runbook_url = <this>/<AlertName>.md (docs/runbooks in this repository). */
  monitoring_runbook_url: z.string().regex(/^[^\s"']+$/).default('https://git.example.com/ops/infra/-/blob/main/docs/runbooks'),
  monitoring_alerts: z
    .object({
      /** node exporter unreachable this long: HostDown (critical). */
      host_down_for: duration.default('2m'),
      /** Any other target unreachable this long: TargetDown (warning). Longer than host_down_for, so a dead host inhibits it. */
      target_down_for: duration.default('5m'),
      disk_warning_percent: z.number().min(1).max(100).default(85),
      disk_critical_percent: z.number().min(1).max(100).default(95),
      /** MemAvailable below this share of RAM. */
      memory_available_percent: z.number().min(1).max(100).default(10),
      /** A replica further behind than this (replay) pages; the RPO is 5 minutes. */
      pg_lag_warning: duration.default('1m'),
      pg_lag_critical: duration.default('2m'),
      /** The newest backup (any type) is older than this many hours. */
      backup_max_age_hours: z.number().int().min(1).default(26),
      cert_expiry_days: z.number().int().min(1).default(14),
      security_updates_for: duration.default('7d'),
      reboot_required_for: duration.default('1d'),
    })
    .strict()
    .default({}),

  // ------------------------------------------------------------- Alertmanager
  alertmanager_port: port.default(9093),
  /** Gossip between the Alertmanagers when the group has more than one host. */
  alertmanager_cluster_port: port.default(9094),
  /** Silences and notification state kept this long (the data directory persists). */
  alertmanager_retention: duration.default('120h'),
  /**
   * Receivers by team (the alerts' `team` label): critical alerts go to `pager`, warnings to
   * `chat`, info nowhere. Webhooks, URL and token from the vault. No receivers: alerts are
   * only in the Alertmanager UI (reported as skipped).
   */
  alertmanager_receivers: z.record(name, z.object({ pager: webhook.optional(), chat: webhook.optional() }).strict()).default({}),
  /** Alerts of a team without receivers go to this team's. */
  alertmanager_default_team: name.default('platform'),
  alertmanager_timing: z
    .object({
      group_wait: duration.default('30s'),
      group_interval: duration.default('5m'),
      /** A critical alert is sent again this often until it resolves (escalation by repetition). */
      critical_repeat: duration.default('30m'),
      warning_repeat: duration.default('4h'),
      resolve_timeout: duration.default('5m'),
    })
    .strict()
    .default({}),

  // ------------------------------------------------------------- central logs
  /** systemd-journal-remote: every other host uploads its journal here over TLS. */
  journal_remote_port: port.default(19532),
  /** The received journals are vacuumed daily down to this size and age (archived files only). */
  journal_remote_max_use: z.string().regex(/^\d+[KMGT]?$/, 'a size such as 20G').default('20G'),
  journal_remote_max_age: z.string().regex(/^\d+(d|w|month|year)$/, 'a journalctl time such as 30d, 6w, 3month').default('30d'),

  // ------------------------------------------------------------- Grafana stack
  /**
   * Loki and Grafana from Grafana's apt repository. Where the repository cannot be reached
   * (the lab), `enabled: false` with the reason: the tasks are reported skipped with it.
   */
  grafana_stack: z
    .object({
      enabled: z.boolean().default(true),
      reason: z.string().optional(),
      apt_url: z.string().url().default('https://apt.grafana.com'),
      /** The repository key's fingerprint, checked when the key is fetched (recommended). */
      key_fingerprint: z.string().regex(/^[0-9A-F]{40}$/, '40 hex digits in capitals').optional(),
      loki_port: port.default(3100),
      loki_retention: duration.default('744h'),
      grafana_port: port.default(3000),
    })
    .strict()
    .default({}),
  /** Grafana's admin password; unset: one is made on the host (/etc/grafana/admin-password). */
  grafana_admin_password: vaultSecret('grafana_admin_password', { file: 'group_vars/monitoring.yaml' }).optional(),
});
export type MonitoringVars = z.output<typeof vars>;
