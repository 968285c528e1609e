/**
 * Loki, Grafana and Alloy from Grafana's apt repository, on the monitoring host: the search
 * side of the central logs, and the dashboards. The hosts do not run a Grafana agent: their
 * journals already arrive here (systemd-journal-upload → journal-remote), and Alloy reads the
 * received journals from /var/log/journal/remote into Loki. One transport on every host, the
 * distribution's, and Grafana's packages on one host only.
 *
 * The repository's key is fetched on the host over HTTPS (verified by the system's trust
 * store), as Grafana documents, and checked against grafana_stack.key_fingerprint when set.
 * Where the repository cannot be reached (the lab), grafana_stack.enabled: false reports
 * every task here as skipped with grafana_stack.reason.
 *
 * Grafana's admin password is the vault's grafana_admin_password when set; else one made on
 * the host at the first run (like a TLS key, it never leaves it): /etc/grafana/admin-password,
 * which grafana.ini reads ($__file{}).
 */
import { files, systemd, apt, command, meta, users, sh, type Task } from 'infra';
import type { MonitoringVars } from './vars.js';

const KEY = '/etc/apt/keyrings/grafana.asc';
const SOURCE = '/etc/apt/sources.list.d/grafana.sources';
export const DASHBOARDS = ['hosts', 'postgresql', 'redis', 'haproxy'];
const DASHBOARD_DIR = '/var/lib/grafana/dashboards/infra';
const ADMIN_PASSWORD = '/etc/grafana/admin-password';
/** Where journal-remote writes what the hosts upload (Alloy reads it). */
export const REMOTE_JOURNAL_DIR = '/var/log/journal/remote';

/** What the templates need besides the variables. */
export interface GrafanaModel {
  /** This host's private address: Loki, Grafana and Prometheus listen there. */
  address: string;
  prometheusUrl: string;
  lokiUrl: string;
  dashboardDir: string;
  journalDir: string;
}

export function grafanaTasks(v: MonitoringVars, model: GrafanaModel): Task[] {
  const g = v.grafana_stack;
  if (!g.enabled) {
    const reason = g.reason ?? 'grafana_stack.enabled is false';
    return ['Grafana apt repository', 'Loki (log store)', 'Alloy (received journals → Loki)', 'Grafana (datasources, dashboards)'].map((what) => meta.skip({ what, reason }));
  }
  const vars = { ...model, g, adminPasswordFile: ADMIN_PASSWORD };
  const password = v.grafana_admin_password
    ? files.file({ path: ADMIN_PASSWORD, content: v.grafana_admin_password, mode: '0640', owner: 'root', group: 'grafana', notify: 'restart grafana' })
    : command.run({ cmd: sh`umask 027 && openssl rand -base64 24 | tr -d '\n' > ${ADMIN_PASSWORD} && chgrp grafana ${ADMIN_PASSWORD}`, creates: ADMIN_PASSWORD, name: "make Grafana's admin password (grafana_admin_password is not set)" });
  return [
    // Repository
    apt.packages({ names: ['ca-certificates', 'curl', 'openssl', ...(g.key_fingerprint ? ['gnupg'] : [])] }),
    files.directory({ path: '/etc/apt/keyrings', mode: '0755', owner: 'root', group: 'root' }),
    command.run({ cmd: fetchKey(`${g.apt_url}/gpg.key`, g.key_fingerprint), creates: KEY, name: "fetch Grafana's repository key" }),
    files.template({ src: 'grafana.sources.hbs', dest: SOURCE, mode: '0644', owner: 'root', group: 'root', vars: { url: g.apt_url, key: KEY } }),
    command.run({ cmd: 'apt-get update -q -o DPkg::Lock::Timeout=120', unless: "apt-cache policy grafana | grep -q 'Candidate: [0-9]'", name: "read Grafana's package list" }),
    apt.packages({ names: ['loki', 'grafana', 'alloy'] }),

    // Loki: single binary, filesystem storage, retention by the compactor.
    files.template({ src: 'loki.yml.hbs', dest: '/etc/loki/config.yml', mode: '0644', owner: 'root', group: 'root', validate: 'loki -verify-config -config.file=%s', vars, notify: 'restart loki' }),
    systemd.service({ name: 'loki', enabled: true, state: 'started' }),

    // Alloy: the received journals into Loki.
    users.user({ name: 'alloy', groups: ['systemd-journal', 'systemd-journal-remote'], createHome: false, system: true, notify: 'restart alloy' }),
    files.template({ src: 'config.alloy.hbs', dest: '/etc/alloy/config.alloy', mode: '0644', owner: 'root', group: 'root', validate: 'alloy fmt %s', vars, notify: 'restart alloy' }),
    systemd.service({ name: 'alloy', enabled: true, state: 'started' }),

    // Grafana: datasources and dashboards provisioned from files.
    password,
    files.template({ src: 'grafana.ini.hbs', dest: '/etc/grafana/grafana.ini', mode: '0640', owner: 'root', group: 'grafana', vars, notify: 'restart grafana' }),
    files.template({ src: 'grafana-datasources.yml.hbs', dest: '/etc/grafana/provisioning/datasources/infra.yaml', mode: '0640', owner: 'root', group: 'grafana', vars, notify: 'restart grafana' }),
    files.template({ src: 'grafana-dashboards.yml.hbs', dest: '/etc/grafana/provisioning/dashboards/infra.yaml', mode: '0640', owner: 'root', group: 'grafana', vars, notify: 'restart grafana' }),
    files.directory({ path: DASHBOARD_DIR, mode: '0755', owner: 'root', group: 'root' }),
    // Grafana re-reads dashboard files on its own (updateIntervalSeconds): no restart.
    ...DASHBOARDS.map((d) => files.copy({ src: `dashboards/${d}.json`, dest: `${DASHBOARD_DIR}/${d}.json`, mode: '0644', owner: 'root', group: 'root' })),
    systemd.service({ name: 'grafana-server', enabled: true, state: 'started' }),
  ];
}

export const grafanaHandlers = {
  'restart loki': systemd.restart('loki'),
  'restart alloy': systemd.restart('alloy'),
  'restart grafana': systemd.restart('grafana-server'),
};

/** Downloads the key to a temp file, checks its fingerprint when one is pinned, then moves it in place. */
function fetchKey(url: string, fingerprint: string | undefined): string {
  const lines = [sh`set -e; t=$(mktemp ${KEY}.XXXXXX); trap 'rm -f "$t"' EXIT`, sh`curl -fsSL --proto =https ${url} -o "$t"`];
  if (fingerprint) {
    lines.push(
      sh`if ! gpg --show-keys --with-colons "$t" | awk -F: '$1 == "fpr" { print $10 }' | grep -qx ${fingerprint}; then echo ${`the key at ${url} is not ${fingerprint}`} >&2; exit 1; fi`,
    );
  }
  lines.push(sh`chmod 0644 "$t"; mv -f "$t" ${KEY}; trap - EXIT`);
  return lines.join('\n');
}
