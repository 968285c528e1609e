/**
 * journal-upload: every host sends its journal to the monitoring host as it is written
 * (systemd-journal-upload → systemd-journal-remote, role monitoring), over HTTPS; the server's
 * certificate is verified against the inventory's CA. Debian's own package on every host, no
 * agent from another repository. A host of the receiving group keeps its journal locally.
 *
 *   package → CA → upload.conf → restart policy that never gives up → service.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { defineRole, z, apt, files, systemd, meta, privateAddress, CA_CERT_FILE, UserError } from 'infra';

export const vars = z.object({
  journal_remote_group: z.string().min(1).default('monitoring').describe('The group whose first host receives the journals (runs journal-remote: role monitoring)'),
  journal_remote_port: z.number().int().min(1).max(65535).default(19532).describe('The port journal-remote listens on (the monitoring role reads the same variable)'),
});

const TLS_DIR = '/etc/ssl/infra-journal-upload';
const CA = `${TLS_DIR}/ca.pem`;

export default defineRole({
  name: 'journal-upload',
  vars,
  tasks: ({ vars: v, host, hosts, inventory }) => {
    let receivers;
    try {
      receivers = hosts(v.journal_remote_group);
    } catch (e) {
      throw new UserError(`journal_remote_group: "${v.journal_remote_group}" is not a group of the inventory`, { hint: 'set it to the group of the monitoring hosts', cause: e });
    }
    if (receivers.length === 0) return [meta.skip({ what: 'journal upload', reason: `group "${v.journal_remote_group}" has no host to receive it` })];
    if (receivers.some((h) => h.name === host.name)) return [meta.skip({ what: 'journal upload', reason: `${host.name} receives the journals itself` })];
    // The receiver's certificate comes from the inventory's CA (role monitoring).
    const caPath = join(inventory.dir, CA_CERT_FILE);
    if (!existsSync(caPath)) return [meta.skip({ what: 'journal upload', reason: `the inventory has no internal CA to verify the receiver with (${caPath}): infra pki init -i ${inventory.env}` })];
    const target = privateAddress(receivers[0]);
    const url = `https://${target.includes(':') ? `[${target}]` : target}:${v.journal_remote_port}`;
    return [
      apt.packages({ names: ['systemd-journal-remote'] }),
      files.directory({ path: TLS_DIR, mode: '0755', owner: 'root', group: 'root' }),
      files.file({ path: CA, content: readFileSync(caPath, 'utf8'), mode: '0644', owner: 'root', group: 'root', notify: 'restart journal upload' }),
      files.directory({ path: '/etc/systemd/journal-upload.conf.d', mode: '0755', owner: 'root', group: 'root' }),
      files.template({ src: 'journal-upload.conf.hbs', dest: '/etc/systemd/journal-upload.conf.d/infra.conf', mode: '0644', owner: 'root', group: 'root', vars: { url, ca: CA }, notify: 'restart journal upload' }),
      systemd.unit({ name: 'systemd-journal-upload.service', dropIn: 'infra', src: 'journal-upload.service.conf.hbs', notify: 'restart journal upload' }),
      systemd.service({ name: 'systemd-journal-upload', enabled: true, state: 'started' }),
    ];
  },
  handlers: {
    'restart journal upload': systemd.restart('systemd-journal-upload'),
  },
});
