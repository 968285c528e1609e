/**
 * node-exporter: host metrics for Prometheus on every host (Debian's prometheus-node-exporter),
 * listening on the private address only, with the textfile collector directory other roles
 * write their results to (backup verification, pending security updates, reboot required,
 * AIDE, Lynis) and a small timer that exports the expiry of the certificates on the host.
 *
 *   package → /etc/default (listen address, collectors) → textfile directory → service →
 *   certificate-expiry timer.
 */
import { defineRole, z, apt, files, systemd, command, privateAddress } from 'infra';

const absolutePath = z.string().regex(/^\/[^\s"'`$\\]+$/, 'an absolute path without spaces or quotes');

export const vars = z.object({
  node_exporter_port: z.number().int().min(1).max(65535).default(9100).describe("The exporter's port, on the private address"),
  textfile_dir: absolutePath
    .default('/var/lib/prometheus/node-exporter')
    .describe("The textfile collector's directory (Debian's default). The same variable the hardening role writes apt.prom, aide.prom and lynis.prom to: one setting moves every writer"),
  node_exporter_systemd_collector: z.boolean().default(true).describe('Export systemd unit states (node_systemd_unit_state): the SystemdUnitFailed alert'),
  node_exporter_cert_dirs: z
    .array(absolutePath)
    .default(['/etc/haproxy/certs', '/etc/ssl/redis', '/etc/postgresql', '/etc/pgbackrest', '/etc/ssl/infra-monitoring'])
    .describe('Directories searched (3 levels deep) for *.pem / *.crt certificates whose expiry is exported (x509_cert_not_after)'),
  node_exporter_cert_scan: z
    .string()
    .regex(/^[A-Za-z0-9 :*/,.~-]+$/, 'a systemd calendar expression such as hourly')
    .default('hourly')
    .describe('When the certificate scan runs (systemd OnCalendar)'),
});

const CERT_SCRIPT = '/usr/local/sbin/infra-cert-expiry';

export default defineRole({
  name: 'node-exporter',
  vars,
  tasks: ({ vars: v, host, hosts }) => {
    const address = privateAddress(hosts(host.name)[0]);
    const listen = address.includes(':') ? `[${address}]:${v.node_exporter_port}` : `${address}:${v.node_exporter_port}`;
    return [
      // Without its Recommends: prometheus-node-exporter-collectors would write apt.prom too,
      // which the hardening role owns.
      apt.packages({ names: ['prometheus-node-exporter', 'openssl'] }),
      files.template({
        src: 'prometheus-node-exporter.default.hbs',
        dest: '/etc/default/prometheus-node-exporter',
        mode: '0644',
        owner: 'root',
        group: 'root',
        vars: { listen },
        notify: 'restart node exporter',
      }),
      files.directory({ path: v.textfile_dir, mode: '0755', owner: 'root', group: 'root' }),
      systemd.service({ name: 'prometheus-node-exporter', enabled: true, state: 'started' }),

      // Certificate expiry, for the CertificateExpiringSoon alert.
      files.template({ src: 'infra-cert-expiry.sh.hbs', dest: CERT_SCRIPT, mode: '0755', owner: 'root', group: 'root', notify: 'scan certificates' }),
      systemd.unit({ name: 'infra-cert-expiry.service', src: 'infra-cert-expiry.service.hbs', vars: { script: CERT_SCRIPT } }),
      systemd.unit({ name: 'infra-cert-expiry.timer', src: 'infra-cert-expiry.timer.hbs' }),
      systemd.service({ name: 'infra-cert-expiry.timer', enabled: true, state: 'started' }),
    ];
  },
  handlers: {
    'restart node exporter': systemd.restart('prometheus-node-exporter'),
    'scan certificates': command.run({ cmd: CERT_SCRIPT, name: 'scan certificates' }),
  },
});
