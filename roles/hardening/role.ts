/**
 * hardening: the baseline for every host — SSH, firewall, sysctl, fail2ban, auditd,
 * unattended security upgrades, chrony, persistent journald, login banner, and removal of
 * packages that should not be there. Designed never to lock us out: every config is
 * validated before it is installed, SSH stays open from the jump host, and the account
 * infra connects with keeps its access.
 */
import { defineRole, z, apt, files, systemd, users, sysctl, command, meta, confirm, UserError, privateAddress } from 'infra';
import { resolveRules, PORTLESS_PROTOCOLS, type AllowRule } from './firewall.js';

const allowRule = z
  .object({
    port: z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d+(-\d+)?$/)]).optional().describe('tcp/udp only: a port or a range "N-M"'),
    proto: z.enum(['tcp', 'udp', 'vrrp']).default('tcp').describe('tcp/udp with a port, or a protocol opened as a whole: vrrp (keepalived)'),
    from: z.array(z.string().min(1)).min(1),
    comment: z.string().optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const portless = r.proto in PORTLESS_PROTOCOLS;
    if (portless && r.port !== undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: `${r.proto} has no ports: remove port` });
    if (!portless && r.port === undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: `Required for ${r.proto}` });
  });

/**
 * Baseline kernel settings (CIS / dev-sec). net.* are per network namespace. ip_forward comes
 * first: writing it resets every net.ipv4.conf.* value to its default (RFC 1122/1812).
 */
export const SYSCTL_PROFILE: Record<string, string | number> = {
  'net.ipv4.ip_forward': 0,
  'net.ipv4.conf.all.rp_filter': 1,
  'net.ipv4.conf.default.rp_filter': 1,
  'net.ipv4.tcp_syncookies': 1,
  'net.ipv4.conf.all.accept_redirects': 0,
  'net.ipv4.conf.default.accept_redirects': 0,
  'net.ipv4.conf.all.secure_redirects': 0,
  'net.ipv4.conf.default.secure_redirects': 0,
  'net.ipv4.conf.all.send_redirects': 0,
  'net.ipv4.conf.default.send_redirects': 0,
  'net.ipv4.conf.all.accept_source_route': 0,
  'net.ipv4.conf.default.accept_source_route': 0,
  'net.ipv4.conf.all.log_martians': 1,
  'net.ipv4.conf.default.log_martians': 1,
  'net.ipv4.icmp_echo_ignore_broadcasts': 1,
  'net.ipv4.icmp_ignore_bogus_error_responses': 1,
  'net.ipv6.conf.all.accept_redirects': 0,
  'net.ipv6.conf.default.accept_redirects': 0,
  'net.ipv6.conf.all.accept_source_route': 0,
  'net.ipv6.conf.all.accept_ra': 0,
  'net.ipv6.conf.default.accept_ra': 0,
  'kernel.kptr_restrict': 2,
  'kernel.dmesg_restrict': 1,
  'kernel.randomize_va_space': 2,
  'kernel.yama.ptrace_scope': 1,
  'fs.protected_hardlinks': 1,
  'fs.protected_symlinks': 1,
  'fs.suid_dumpable': 0,
};

/** Seconds after which a host rolls back an sshd or firewall change nobody confirmed. */
const CONFIRM_WITHIN = 60;

export const vars = z.object({
  ssh_port: z.number().int().min(1).max(65535).default(22),
  ssh_max_auth_tries: z.number().int().min(1).max(10).default(3),
  ssh_login_grace_time: z.number().int().min(5).default(30),
  ssh_client_alive_interval: z.number().int().min(0).default(300),
  ssh_client_alive_count_max: z.number().int().min(0).default(2),
  ssh_ciphers: z
    .array(z.string())
    .default(['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr']),
  ssh_macs: z
    .array(z.string())
    .default(['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com', 'umac-128-etm@openssh.com', 'hmac-sha2-512', 'hmac-sha2-256']),
  ssh_kex_algorithms: z
    .array(z.string())
    .default(['sntrup761x25519-sha512@openssh.com', 'curve25519-sha256', 'curve25519-sha256@libssh.org', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512', 'diffie-hellman-group-exchange-sha256']),
  ssh_host_key_algorithms: z.array(z.string()).default(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256']),
  ssh_jump_group: z.string().default('bastion').describe('Hosts of this group are jump hosts: SSH open to ssh_allow_from, forwarding for jumps'),
  ssh_allow_from: z.array(z.string()).default([]).describe('Who may SSH to a jump host (or to a host reached directly): CIDRs, groups or hosts. Empty = anyone'),
  admin_users: z
    .array(
      z.object({
        name: z.string().regex(/^[a-z_][a-z0-9_-]*$/),
        keys: z.array(z.string()).default([]),
        shell: z.string().default('/bin/bash'),
        nopasswd: z.boolean().default(true),
      }).strict(),
    )
    .default([]),
  firewall: z
    .object({
      enabled: z.boolean().default(true),
      allow: z.array(allowRule).default([]),
      log_drops: z.boolean().default(false),
    })
    .strict()
    .default({}),
  sysctl_overrides: z.record(z.union([z.string(), z.number()])).default({}),
  fail2ban_maxretry: z.number().int().min(1).default(5),
  fail2ban_findtime: z.string().default('10m'),
  fail2ban_bantime: z.string().default('1h'),
  audit_immutable: z.boolean().default(false),
  unattended_reboot: z.boolean().default(false),
  journald_max_use: z.string().default('500M'),
  login_banner: z.string().default('Authorized access only. Activity on this system is monitored and logged.'),
  remove_packages: z
    .array(z.string())
    .default(['telnet', 'inetutils-telnet', 'rsh-client', 'rsh-redone-client', 'nis', 'talk', 'ntalk', 'xinetd', 'tftp', 'ftp']),
});

export default defineRole({
  name: 'hardening',
  vars,
  tasks: ({ vars: v, host, hosts, inventory }) => {
    const inContainer = host.facts.container !== 'none';
    const spec = inventory.hosts.get(host.name)!;
    const isJumpHost = host.groups.includes(v.ssh_jump_group);
    const openings = firewallOpenings({ vars: v, host, hosts, inventory });

    const connectUser = spec.conn.user;
    const ssh = {
      // Never lock out the account infra itself connects with.
      permitRootLogin: v.admin_users.length > 0 && connectUser !== 'root' ? 'no' : 'prohibit-password',
      allowTcpForwarding: isJumpHost ? 'local' : 'no',
    };
    // An override keeps its key's place in the profile (ip_forward first); new keys go last.
    const sysctls = { ...SYSCTL_PROFILE, ...v.sysctl_overrides };

    return [
      apt.packages({
        names: ['openssh-server', 'sudo', 'nftables', 'fail2ban', 'python3-systemd', 'auditd', 'unattended-upgrades', 'chrony', 'util-linux'],
      }),
      apt.packages({ names: v.remove_packages, state: 'absent', purge: true, name: 'remove packages that should not be there' }),

      // Admin users and sudo
      ...v.admin_users.flatMap((u) => [
        users.user({ name: u.name, shell: u.shell }),
        ...(u.keys.length ? [users.authorizedKey({ user: u.name, key: u.keys.join('\n') })] : []),
      ]),
      ...(v.admin_users.length
        ? [
            files.template({
              src: 'sudoers-admins.hbs',
              dest: '/etc/sudoers.d/90-infra-admins',
              mode: '0440',
              owner: 'root',
              group: 'root',
              validate: 'visudo -cf %s',
              vars: { admins: v.admin_users },
            }),
          ]
        : []),

      // SSH
      files.template({ src: 'issue.net.hbs', dest: '/etc/issue.net', mode: '0644', owner: 'root', group: 'root' }),
      files.template({ src: 'issue.net.hbs', dest: '/etc/issue', mode: '0644', owner: 'root', group: 'root' }),
      // Commit-confirmed: reloaded here, kept only if a new connection still gets in.
      confirm.files({
        files: [{ path: '/etc/ssh/sshd_config.d/20-hardening.conf', template: 'sshd-hardening.conf.hbs', mode: '0644', owner: 'root', group: 'root', vars: { ssh } }],
        validate: 'sshd -t -f %s',
        activate: 'systemctl reload ssh',
        within: CONFIRM_WITHIN,
      }),
      systemd.service({ name: 'ssh', enabled: true, state: 'started' }),

      // Kernel
      ...Object.entries(sysctls).map(([name, value]) =>
        sysctl.param({
          name,
          value,
          file: '/etc/sysctl.d/90-infra-hardening.conf',
          // In a container only the network namespace's keys can be set live.
          live: !inContainer || name.startsWith('net.'),
        }),
      ),
      ...(inContainer
        ? [meta.skip({ what: 'live kernel.* and fs.* sysctls', reason: 'global kernel settings cannot be set from a container; persisted for boot' })]
        : []),

      // Firewall
      ...(openings
        ? [
            files.directory({ path: '/etc/nftables.d', mode: '0755', owner: 'root', group: 'root' }),
            // The ruleset (main file + its include) as one commit-confirmed unit: loaded here,
            // kept only if a new connection still gets in. Loading the old files does not drop
            // a table they lack (a first install), so the rollback drops ours first then.
            confirm.files({
              files: [
                { path: '/etc/nftables.conf', template: 'nftables.conf.hbs', mode: '0755', owner: 'root', group: 'root' },
                { path: '/etc/nftables.d/infra.nft', template: 'infra.nft.hbs', mode: '0640', owner: 'root', group: 'root', vars: { rules: resolveRules(openings, hosts), logDrops: v.firewall.log_drops } },
              ],
              validate: 'nft -c -f %s',
              activate: 'systemctl reload-or-restart nftables',
              rollback: '[ -e /etc/nftables.d/infra.nft ] || nft delete table inet infra_filter 2>/dev/null; systemctl reload-or-restart nftables',
              within: CONFIRM_WITHIN,
            }),
            systemd.service({ name: 'nftables', enabled: true, state: 'started' }),
          ]
        : []),

      // fail2ban: the sshd jail reads the journal (Debian 12 has no auth.log).
      files.template({
        src: 'fail2ban-jail.local.hbs',
        dest: '/etc/fail2ban/jail.d/10-infra.local',
        mode: '0644',
        owner: 'root',
        group: 'root',
        vars: { ignore: [] },
        notify: 'restart fail2ban',
      }),
      files.absent({ path: '/etc/fail2ban/jail.d/defaults-debian.conf', notify: 'restart fail2ban' }),
      systemd.service({ name: 'fail2ban', enabled: true, state: 'started' }),

      // auditd: rules always installed; the daemon cannot run in a container.
      files.template({ src: 'audit.rules.hbs', dest: '/etc/audit/rules.d/90-infra.rules', mode: '0640', owner: 'root', group: 'root', notify: 'load audit rules' }),
      ...(inContainer
        ? [meta.skip({ what: 'auditd service', reason: `auditd cannot run in a container (${host.facts.container}): the audit subsystem is not namespaced` })]
        : [systemd.service({ name: 'auditd', enabled: true, state: 'started' })]),

      // Security updates only, unattended.
      files.template({ src: 'unattended-upgrades.conf.hbs', dest: '/etc/apt/apt.conf.d/52infra-unattended-upgrades', mode: '0644', owner: 'root', group: 'root' }),

      // Time
      ...(inContainer
        ? [meta.skip({ what: 'chrony service', reason: 'a container cannot set the clock (chrony needs CAP_SYS_TIME); the host keeps time' })]
        : [systemd.service({ name: 'chrony', enabled: true, state: 'started' })]),

      // Persistent journal
      files.directory({ path: '/var/log/journal', mode: '2755', owner: 'root', group: 'systemd-journal' }),
      files.directory({ path: '/etc/systemd/journald.conf.d', mode: '0755', owner: 'root', group: 'root' }),
      files.template({ src: 'journald.conf.hbs', dest: '/etc/systemd/journald.conf.d/10-infra.conf', mode: '0644', owner: 'root', group: 'root', notify: 'restart journald' }),
    ];
  },
  handlers: {
    // No task of this role notifies these two any more (sshd and nftables are reloaded by their
    // commit-confirmed tasks); kept for notifications a run before that left pending on a host.
    'reload ssh': systemd.reload('ssh'),
    'reload nftables': systemd.reload('nftables'),
    'restart fail2ban': systemd.restart('fail2ban'),
    'restart journald': systemd.restart('systemd-journald'),
    'load audit rules': command.run({
      cmd: 'if systemd-detect-virt --container -q; then echo "skipped in a container"; else augenrules --load; fi',
    }),
  },
});

/**
 * A group's own openings. Only the most specific group's list reaches the role's schema, so
 * the others are checked here: a typo must fail loudly, not silently close a port.
 */
function groupAllow(group: string, groupVars: Record<string, unknown> | undefined): AllowRule[] {
  const fw = groupVars?.firewall as { allow?: unknown } | undefined;
  const parsed = z.array(allowRule).safeParse(fw?.allow ?? []);
  if (parsed.success) return parsed.data;
  const where = (path: (string | number)[]) => path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
  const problems = parsed.error.issues.map((i) => `firewall.allow${where(i.path)}: ${i.message}`).join('; ');
  throw new UserError(`group ${group}: ${problems}`, {
    hint: `fix firewall.allow in group_vars/${group}.yaml (or the group's vars: in hosts.yaml): each rule is { port, proto?, from: [...], comment? } or { proto: vrrp, from: [...] }`,
  });
}

/** The addresses a host behind `bastion` sees SSH come from. */
function jumpHostAddresses(bastion: string, hosts: (p: string) => { address: string; vars: Record<string, unknown>; name: string; groups: string[] }[], jumpGroup: string): string[] {
  const named = safeHosts(hosts, bastion);
  const addrs = named.length ? named.map(privateAddress) : [bastion.replace(/^.*@/, '').replace(/:\d+$/, '')];
  // Any jump host of the inventory may carry SSH (several bastions in one environment).
  return [...new Set([...addrs, ...safeHosts(hosts, jumpGroup).map(privateAddress)])];
}

function safeHosts<T>(hosts: (p: string) => T[], pattern: string): T[] {
  try {
    return hosts(pattern);
  } catch {
    return [];
  }
}

function dedupe(rules: AllowRule[]): AllowRule[] {
  const seen = new Set<string>();
  return rules.filter((r) => {
    const k = JSON.stringify(r);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

type FirewallContext = Pick<import('infra').RoleContext<z.output<typeof vars>>, 'vars' | 'hosts' | 'inventory'> & { host: { name: string; groups: string[] } };

/**
 * Every opening of a host's firewall as the inventory declares it (before resolveRules turns
 * names into addresses), or null when the role leaves the firewall alone (firewall.enabled:
 * false). Pure: the role installs exactly these, and `infra docs` documents them.
 */
export function firewallOpenings({ vars: v, host, hosts, inventory }: FirewallContext): AllowRule[] | null {
  const spec = inventory.hosts.get(host.name)!;
  const isJumpHost = host.groups.includes(v.ssh_jump_group);
  const direct = !spec.conn.bastion;
  // SSH: who may connect. Hosts behind a jump host accept SSH only from it.
  const sshFrom = isJumpHost || direct ? (v.ssh_allow_from.length ? v.ssh_allow_from : ['any']) : jumpHostAddresses(spec.conn.bastion!, hosts, v.ssh_jump_group);
  const allow: AllowRule[] = [{ port: v.ssh_port, proto: 'tcp', from: sshFrom, comment: 'ssh' }];
  // Openings declared by every group the host is in, then by the host's own vars.
  for (const g of host.groups) allow.push(...groupAllow(g, inventory.groups.get(g)?.vars));
  allow.push(...v.firewall.allow);
  return v.firewall.enabled ? dedupe(allow) : null;
}

/** For `infra docs`, which documents the rules this role installs (roles never import each other; src/ loads them). */
export { resolveRules };
