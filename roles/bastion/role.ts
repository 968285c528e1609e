/**
 * bastion: the jump host. TCP forwarding for jumps only (local forwarding to the SSH port of
 * the inventory's hosts), stricter fail2ban, and session logging of interactive logins.
 * Apply it before `hardening` on the bastion: both drop-ins agree, and this one is read first.
 */
import { defineRole, z, apt, files, systemd, aide, confirm, privateAddress } from 'infra';

export const vars = z.object({
  bastion_permit_open: z
    .union([z.literal('inventory'), z.array(z.string().regex(/^[^\s:]+:\d+$/)).min(1)])
    .default('inventory')
    .describe('Jump destinations: "inventory" = port 22 (ssh_port) of every other host; or explicit host:port list'),
  bastion_max_sessions: z.number().int().min(1).default(10),
  bastion_fail2ban_maxretry: z.number().int().min(1).default(3),
  bastion_fail2ban_findtime: z.string().default('30m'),
  bastion_fail2ban_bantime: z.string().default('6h'),
  bastion_session_log_dir: z.string().regex(/^\/[^\s"'`$]+$/).default('/var/log/infra-sessions'),
  ssh_port: z.number().int().default(22),
});

/** Seconds the host waits for the new connection before it puts the old drop-in back. */
const CONFIRM_WITHIN = 60;

export default defineRole({
  name: 'bastion',
  vars,
  tasks: ({ vars: v, host, hosts }) => {
    const permitOpen =
      v.bastion_permit_open === 'inventory'
        ? [...new Set(hosts('all').filter((h) => h.name !== host.name).map((h) => `${permitOpenHost(privateAddress(h))}:${v.ssh_port}`))].sort()
        : v.bastion_permit_open;
    const tasks = [
      apt.packages({ names: ['openssh-server', 'fail2ban', 'python3-systemd', 'bsdutils'] }),
      // Commit-confirmed, like hardening's drop-in: every run goes through this host, so a
      // drop-in that shuts logins out is reloaded here and kept only if a new connection gets in.
      confirm.files({
        files: [
          {
            path: '/etc/ssh/sshd_config.d/05-bastion.conf',
            template: 'sshd-bastion.conf.hbs',
            mode: '0644',
            owner: 'root',
            group: 'root',
            vars: { permitOpen: permitOpen.length ? permitOpen : ['none'] },
          },
        ],
        validate: 'sshd -t -f %s',
        activate: 'systemctl reload ssh',
        within: CONFIRM_WITHIN,
      }),
      files.directory({ path: '/etc/fail2ban/jail.d', mode: '0755', owner: 'root', group: 'root' }),
      files.template({
        src: 'fail2ban-bastion.local.hbs',
        dest: '/etc/fail2ban/jail.d/20-bastion.local',
        mode: '0644',
        owner: 'root',
        group: 'root',
        notify: 'restart fail2ban',
      }),
      // Users can add to the log directory but neither list nor remove others' logs.
      files.directory({ path: v.bastion_session_log_dir, mode: '1733', owner: 'root', group: 'root' }),
      files.template({ src: 'session-log.sh.hbs', dest: '/etc/profile.d/infra-session-log.sh', mode: '0644', owner: 'root', group: 'root' }),
      systemd.service({ name: 'ssh', enabled: true, state: 'started' }),
    ];
    // What this role changes is re-baselined in AIDE (set up by hardening) at the end of the play.
    return tasks.map((t) => ({ ...t, notify: [...t.notify, 'update aide database'] }));
  },
  handlers: {
    'restart fail2ban': systemd.restart('fail2ban'),
    'update aide database': aide.update({}),
  },
});

/** sshd's PermitOpen takes IPv6 addresses in brackets: [fd00::1]:22. */
const permitOpenHost = (address: string): string => (address.includes(':') ? `[${address}]` : address);
