/**
 * monitoring: the monitoring host of the stack. Prometheus scrapes every host and service the
 * inventory names and evaluates the alert rules; Alertmanager routes the alerts by team and
 * severity; the blackbox exporter probes the public endpoint; every other host's journal
 * arrives here (systemd-journal-remote); Loki, Alloy and Grafana from Grafana's repository
 * make logs and metrics searchable (production).
 *
 *   packages → Prometheus (rules checked with promtool check rules, config with promtool check
 *   config, applied by reload) → Alertmanager (amtool check-config, reload) → blackbox
 *   (--config.check, reload) → journal-remote (certificate from the internal CA) → Grafana stack.
 */
import { defineRole, z, apt, files, systemd, command, meta, tls, privateAddress, UserError, type HostView } from 'infra';
import { vars as monitoringVars, type MonitoringVars } from './vars.js';
import { endpoint, exporterJobs, probeJobs, selfJobs, sentinelJob, vipsOf, type Job, type Vip } from './scrape.js';
import { alertmanagerModel } from './alertmanager.js';
import { grafanaTasks, grafanaHandlers, REMOTE_JOURNAL_DIR } from './grafana.js';

export const vars = monitoringVars.extend({
  monitoring_group: z.string().min(1).default('monitoring').describe('The monitoring hosts: several form one Alertmanager cluster, each Prometheus scrapes everything'),
});

/** The rule files, one per concern: templates/rules/<name>.yml.hbs → /etc/prometheus/rules/<name>.yml. */
export const RULE_FILES = ['host', 'security', 'lb', 'postgres', 'backup', 'redis', 'monitoring'];

const RULES_DIR = '/etc/prometheus/rules';
/**
 * This host's certificate from the inventory's CA (journal-remote's HTTPS) and the CA beside
 * it, which the blackbox probe also verifies the VIP's certificate against.
 */
const TLS_DIR = '/etc/ssl/infra-monitoring';
const TLS = { cert: `${TLS_DIR}/host.pem`, key: `${TLS_DIR}/host.key`, ca: `${TLS_DIR}/ca.pem` };

/** Reloads a unit and waits until it reports the new configuration loaded (templates/infra-reload.sh.hbs). */
const RELOAD = '/usr/local/sbin/infra-reload';

/**
 * Debian starts each daemon at install with its example configuration: Prometheus scraping
 * localhost:9100 (whose failed sample then lingers 5 minutes after the restart and raises a
 * HostDown for "localhost:9100"), Alertmanager gossiping on every address. Masked before the
 * first install, unmasked once this role's configuration is in place.
 */
const DAEMONS = 'prometheus prometheus-alertmanager prometheus-blackbox-exporter';
const installed = `dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q 'ok installed'`;
const MASK_UNTIL_CONFIGURED = command.run({
  cmd: `for p in ${DAEMONS}; do ${installed} || systemctl mask "$p.service"; done`,
  unless: `for p in ${DAEMONS}; do ${installed} || exit 1; done`,
  name: "mask the daemons before their first install (not started with Debian's example configuration)",
});
const UNMASK = command.run({
  cmd: `systemctl unmask ${DAEMONS.split(' ').map((d) => `${d}.service`).join(' ')}`,
  onlyIf: `for p in ${DAEMONS}; do [ "$(systemctl is-enabled "$p.service" 2>/dev/null)" = masked ] && exit 0; done; exit 1`,
  name: 'unmask the daemons, configured',
});

export default defineRole({
  name: 'monitoring',
  vars,
  tasks: ({ vars: v, host, hosts }) => {
    const self = hosts(host.name)[0];
    const address = privateAddress(self);
    const monitoring = monitoringHosts(hosts, v.monitoring_group, host.name);
    const vips = vipsOf(v.blackbox_vip_group, hosts);
    const jobs = scrapeJobs(v, hosts, monitoring, vips);
    const am = alertmanagerModel(v);
    const peers = monitoring.filter((h) => h.name !== host.name).map((h) => endpoint(privateAddress(h), v.alertmanager_cluster_port));
    const prometheusListen = endpoint(address, v.prometheus_port);
    const alertmanagerListen = endpoint(address, v.alertmanager_port);

    return [
      MASK_UNTIL_CONFIGURED,
      apt.packages({ names: ['prometheus', 'prometheus-alertmanager', 'prometheus-blackbox-exporter', 'systemd-journal-remote', 'curl'] }),
      files.template({
        src: 'infra-reload.sh.hbs',
        dest: RELOAD,
        mode: '0755',
        owner: 'root',
        group: 'root',
        vars: { prometheus: `http://${prometheusListen}`, alertmanager: `http://${alertmanagerListen}` },
      }),

      // Prometheus: rules first (each checked alone), then the config that loads them
      // (promtool check config also checks every rule file it names, from the same directory).
      files.template({ src: 'prometheus.default.hbs', dest: '/etc/default/prometheus', mode: '0644', owner: 'root', group: 'root', vars: { listen: prometheusListen }, notify: 'restart prometheus' }),
      files.directory({ path: RULES_DIR, mode: '0755', owner: 'root', group: 'root' }),
      ...RULE_FILES.map((r) =>
        files.template({
          src: `rules/${r}.yml.hbs`,
          dest: `${RULES_DIR}/${r}.yml`,
          mode: '0644',
          owner: 'root',
          group: 'root',
          validate: 'promtool check rules %s',
          vars: { a: v.monitoring_alerts, runbook: v.monitoring_runbook_url.replace(/\/+$/, '') },
          notify: 'reload prometheus',
        }),
      ),
      files.template({
        src: 'prometheus.yml.hbs',
        dest: '/etc/prometheus/prometheus.yml',
        mode: '0644',
        owner: 'root',
        group: 'root',
        validate: 'promtool check config %s',
        vars: { jobs, alertmanagers: monitoring.map((h) => endpoint(privateAddress(h), v.alertmanager_port)) },
        notify: 'reload prometheus',
      }),
      UNMASK,
      systemd.service({ name: 'prometheus', enabled: true, state: 'started' }),

      // Alertmanager: the receivers' URLs and tokens are secrets (0640, group prometheus).
      files.template({
        src: 'alertmanager.default.hbs',
        dest: '/etc/default/prometheus-alertmanager',
        mode: '0644',
        owner: 'root',
        group: 'root',
        vars: { listen: alertmanagerListen, clusterListen: peers.length ? endpoint(address, v.alertmanager_cluster_port) : '', peers },
        notify: 'restart alertmanager',
      }),
      files.template({
        src: 'alertmanager.yml.hbs',
        dest: '/etc/prometheus/alertmanager.yml',
        mode: '0640',
        owner: 'root',
        group: 'prometheus',
        validate: 'amtool check-config %s',
        vars: { am, t: v.alertmanager_timing },
        notify: 'reload alertmanager',
      }),
      ...(am.receivers.length
        ? []
        : [meta.skip({ what: 'alert delivery', reason: 'alertmanager_receivers is empty: alerts are only shown in Alertmanager (set a pager and a chat webhook per team)' })]),
      systemd.service({ name: 'prometheus-alertmanager', enabled: true, state: 'started' }),

      // This host's certificate (key readable by journal-remote only) and the inventory's CA.
      files.directory({ path: TLS_DIR, mode: '0755', owner: 'root', group: 'root' }),
      tls.certificate({ certPath: TLS.cert, keyPath: TLS.key, caPath: TLS.ca, owner: 'root', group: 'systemd-journal-remote', keyMode: '0640', notify: ['restart journal-remote', 'reload blackbox'] }),

      // blackbox: the public endpoint, from here.
      files.template({
        src: 'blackbox.yml.hbs',
        dest: '/etc/prometheus/blackbox.yml',
        mode: '0644',
        owner: 'root',
        group: 'root',
        validate: 'prometheus-blackbox-exporter --config.check --config.file=%s',
        vars: { caFile: TLS.ca },
        notify: 'reload blackbox',
      }),
      files.template({ src: 'blackbox.default.hbs', dest: '/etc/default/prometheus-blackbox-exporter', mode: '0644', owner: 'root', group: 'root', notify: 'restart blackbox' }),
      systemd.service({ name: 'prometheus-blackbox-exporter', enabled: true, state: 'started' }),
      ...(vips.length ? [] : [meta.skip({ what: 'public endpoint probes', reason: `no host of "${v.blackbox_vip_group}" has a vip` })]),

      // Central journal: HTTPS with this host's certificate.
      files.directory({ path: '/etc/systemd/journal-remote.conf.d', mode: '0755', owner: 'root', group: 'root' }),
      files.template({ src: 'journal-remote.conf.hbs', dest: '/etc/systemd/journal-remote.conf.d/infra.conf', mode: '0644', owner: 'root', group: 'root', vars: TLS, notify: 'restart journal-remote' }),
      systemd.unit({ name: 'systemd-journal-remote.socket', dropIn: 'infra', src: 'journal-remote.socket.conf.hbs', vars: { listen: endpoint(address, v.journal_remote_port) }, notify: 'restart journal-remote' }),
      systemd.service({ name: 'systemd-journal-remote.socket', enabled: true, state: 'started' }),
      systemd.unit({ name: 'infra-journal-remote-vacuum.service', src: 'journal-remote-vacuum.service.hbs' }),
      systemd.unit({ name: 'infra-journal-remote-vacuum.timer', src: 'journal-remote-vacuum.timer.hbs' }),
      systemd.service({ name: 'infra-journal-remote-vacuum.timer', enabled: true, state: 'started' }),

      // Loki, Alloy, Grafana (production: Grafana's repository).
      ...grafanaTasks(v, {
        address,
        prometheusUrl: `http://${prometheusListen}`,
        lokiUrl: `http://${endpoint(address, v.grafana_stack.loki_port)}`,
        dashboardDir: '/var/lib/grafana/dashboards/infra',
        journalDir: REMOTE_JOURNAL_DIR,
      }),
    ];
  },
  handlers: {
    'restart prometheus': systemd.restart('prometheus'),
    'reload prometheus': command.run({ cmd: `${RELOAD} prometheus`, name: 'reload prometheus' }),
    'restart alertmanager': systemd.restart('prometheus-alertmanager'),
    'reload alertmanager': command.run({ cmd: `${RELOAD} prometheus-alertmanager`, name: 'reload alertmanager' }),
    'restart blackbox': systemd.restart('prometheus-blackbox-exporter'),
    'reload blackbox': systemd.reload('prometheus-blackbox-exporter'),
    // The socket first (its address), then the service (its certificate and settings).
    'restart journal-remote': command.run({ cmd: 'systemctl restart systemd-journal-remote.socket && systemctl try-restart systemd-journal-remote.service', name: 'restart journal-remote' }),
    ...grafanaHandlers,
  },
});

function monitoringHosts(hosts: (p: string) => HostView[], group: string, self: string): HostView[] {
  let found: HostView[];
  try {
    found = hosts(group);
  } catch (e) {
    throw new UserError(`monitoring_group: "${group}" is not a group of the inventory`, { hint: 'set monitoring_group to the group of the monitoring hosts', cause: e });
  }
  if (!found.some((h) => h.name === self)) {
    throw new UserError(`${self} is not in monitoring_group "${group}"`, { hint: `apply the monitoring role to the hosts of "${group}" (hosts: ${group} in the play)` });
  }
  return found;
}

/** Every job, in the order the config lists them. */
function scrapeJobs(v: MonitoringVars, hosts: (p: string) => HostView[], monitoring: HostView[], vips: Vip[]): Job[] {
  const sentinels = sentinelJob(v, hosts);
  return [
    ...exporterJobs(v.prometheus_exporters, hosts),
    ...(sentinels ? [sentinels] : []),
    ...probeJobs(vips, v.blackbox_https_path, `127.0.0.1:${v.blackbox_port}`),
    ...selfJobs(monitoring, v),
  ];
}
