/**
 * hardening: the baseline for every host — SSH, firewall, sysctl, fail2ban, auditd, security
 * updates that really arrive, accounts and PAM, core dumps and unused kernel modules off,
 * process accounting, file integrity (AIDE), a weekly Lynis scan, chrony, persistent journald,
 * login banner, and removal of packages that should not be there. Designed never to lock us
 * out: every config is validated before it is installed, SSH stays open from the jump host,
 * and the account infra connects with keeps its access. Outside judges (Lynis, ssh-audit)
 * measure the result: see README.md.
 */
import { defineRole, z, apt, files, systemd, users, sysctl, command, meta, confirm, aide, UserError, privateAddress, type Task } from 'infra';
import { resolveRules, PORTLESS_PROTOCOLS, type AllowRule } from './firewall.js';
import { securitySuiteTask, updatesTasks, catchUpHandler, CATCH_UP_HANDLER, UPDATE_PACKAGES } from './updates.js';
import { accountsTasks, ACCOUNT_PACKAGES } from './accounts.js';
import { systemTasks, settableInContainer, SYSTEM_PACKAGES } from './system.js';
import { integrityTasks, INTEGRITY_PACKAGES } from './integrity.js';
import { lynisTasks } from './lynis.js';

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
 * Baseline kernel settings (CIS / dev-sec / KSPP, and every key of Lynis' scan profile that
 * applies to Linux). net.ipv4/ipv6 keys are per network namespace, the rest belong to the
 * kernel. ip_forward comes first: writing it resets every net.ipv4.conf.* value to its
 * default (RFC 1122/1812). Not here on purpose: kernel.modules_disabled (nftables and
 * WireGuard load modules on demand).
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
  'net.ipv6.conf.default.accept_source_route': 0,
  'net.ipv6.conf.all.accept_ra': 0,
  'net.ipv6.conf.default.accept_ra': 0,
  'net.core.bpf_jit_harden': 2,
  'kernel.kptr_restrict': 2,
  'kernel.dmesg_restrict': 1,
  'kernel.randomize_va_space': 2,
  'kernel.yama.ptrace_scope': 1,
  'kernel.perf_event_paranoid': 3,
  'kernel.unprivileged_bpf_disabled': 1,
  'kernel.sysrq': 0,
  'kernel.ctrl-alt-del': 0,
  'kernel.core_uses_pid': 1,
  'dev.tty.ldisc_autoload': 0,
  'fs.protected_hardlinks': 1,
  'fs.protected_symlinks': 1,
  'fs.protected_fifos': 2,
  'fs.protected_regular': 2,
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
    // Encrypt-then-MAC only: ssh-audit warns on encrypt-and-MAC (hmac-sha2-256/512 without -etm).
    .default(['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com', 'umac-128-etm@openssh.com']),
  ssh_kex_algorithms: z
    .array(z.string())
    .default(['sntrup761x25519-sha512@openssh.com', 'curve25519-sha256', 'curve25519-sha256@libssh.org', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512', 'diffie-hellman-group-exchange-sha256']),
  ssh_host_key_algorithms: z.array(z.string()).default(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256']),
  ssh_max_sessions: z.number().int().min(1).default(2).describe("Sessions per connection (infra needs one; a jump host's bastion role sets its own)"),
  ssh_moduli_min_bits: z.number().int().min(2048).default(3072).describe('Diffie-Hellman group-exchange moduli smaller than this are removed from /etc/ssh/moduli'),
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

  // Security updates (updates.ts)
  security_mirror: z.string().url().optional().describe("The security suite's mirror; default per distribution (security.debian.org, security.ubuntu.com)"),
  security_components: z
    .array(z.string().regex(/^[a-z0-9-]+$/))
    .min(1)
    .optional()
    .describe('Its components; default per distribution (Debian: main; Ubuntu: main restricted universe multiverse)'),
  security_catch_up: z.boolean().default(true).describe('When this role adds the security suite to a host, install the pending security updates in that run'),
  textfile_dir: z
    .string()
    .regex(/^\/[^\s"'`$\\]+$/)
    .default('/var/lib/prometheus/node-exporter')
    .describe("node exporter's textfile collector directory: pending updates, AIDE and Lynis results land here"),

  // Accounts (accounts.ts)
  password_max_days: z.number().int().min(1).default(365).describe('login.defs PASS_MAX_DAYS (new accounts; key-only admins never expire)'),
  password_min_days: z.number().int().min(0).default(1).describe('login.defs PASS_MIN_DAYS'),
  password_warn_days: z.number().int().min(0).default(14).describe('login.defs PASS_WARN_AGE'),
  password_hash_rounds: z.number().int().min(5000).default(65536).describe('login.defs SHA_CRYPT_MIN_ROUNDS and SHA_CRYPT_MAX_ROUNDS'),
  password_min_length: z.number().int().min(8).default(14).describe('pam_pwquality minlen'),
  login_umask: z.string().regex(/^0?[0-7]{3}$/).default('027').describe("umask for new accounts' files and home directories (login.defs UMASK; HOME_MODE follows)"),
  shell_timeout: z.number().int().min(0).default(900).describe('Idle interactive shells end after this many seconds (TMOUT); 0 = never'),

  // Kernel modules, core dumps, accounting (system.ts)
  blacklist_modules: z
    .array(z.string().regex(/^[a-z0-9_-]+$/))
    .default(['dccp', 'sctp', 'rds', 'tipc', 'usb-storage', 'firewire-core', 'firewire-ohci', 'firewire-sbp2'])
    .describe('Modules that can never be loaded: unused network protocols, USB and FireWire storage'),

  // File integrity (integrity.ts)
  aide_paths: z
    .array(z.string().regex(/^\/[^\s]*$/))
    .min(1)
    .default(['/etc', '/usr/bin', '/usr/sbin', '/usr/lib', '/usr/local', '/boot', '/root/.ssh'])
    .describe('What AIDE watches'),
  aide_exclude: z
    .array(z.string().regex(/^\/\S*$/))
    .default(['/etc/mtab$', '/etc/adjtime$', '/etc/ld\\.so\\.cache$'])
    .describe('Paths (AIDE regular expressions) that change legitimately at run time'),
  aide_check_schedule: z.string().regex(/^[^\n]+$/).default('daily').describe('systemd OnCalendar of the AIDE check'),
  aide_rebaseline_after_dpkg: z.boolean().default(true).describe('Re-baseline AIDE after dpkg runs (security updates would otherwise alarm every day)'),

  // Lynis (lynis.ts)
  lynis_schedule: z.string().regex(/^[^\n]+$/).default('weekly').describe('systemd OnCalendar of the Lynis scan'),
  lynis_skip_tests: z
    .array(z.object({ test: z.string().regex(/^[A-Z]{3,5}-\d{4}(:[A-Za-z0-9_.-]+)?$/), reason: z.string().min(1) }).strict())
    .default([])
    .describe('Site decisions: Lynis tests to skip, each with the reason written into the profile'),
});

export type HardeningVars = z.output<typeof vars>;

const AIDE_HANDLER = 'update aide database';

export default defineRole({
  name: 'hardening',
  vars,
  tasks: ({ vars: v, host, hosts, inventory }) => {
    const facts = host.facts;
    const inContainer = facts.container !== 'none';
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

    return rebaselineAide([
      // Security suite first: everything installed below comes with its security fixes.
      securitySuiteTask(v, facts),
      apt.packages({
        names: ['openssh-server', 'sudo', 'nftables', 'fail2ban', 'python3-systemd', 'auditd', 'unattended-upgrades', 'chrony', 'util-linux',
          ...UPDATE_PACKAGES, ...ACCOUNT_PACKAGES, ...SYSTEM_PACKAGES, ...INTEGRITY_PACKAGES, 'lynis'],
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
      ...accountsTasks(v),

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
      sshModuliTask(v.ssh_moduli_min_bits),
      systemd.service({ name: 'ssh', enabled: true, state: 'started' }),

      // Kernel
      ...Object.entries(sysctls).map(([name, value]) =>
        sysctl.param({
          name,
          value,
          file: '/etc/sysctl.d/90-infra-hardening.conf',
          // In a container only the network namespace's keys can be set live.
          live: !inContainer || settableInContainer(name),
        }),
      ),
      ...(inContainer
        ? [meta.skip({ what: 'live kernel-wide sysctls (kernel.*, fs.*, dev.*, net.core.*)', reason: 'global kernel settings cannot be set from a container; persisted for boot' })]
        : []),
      ...systemTasks(v, facts),

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
        ? [meta.skip({ what: 'auditd service', reason: `auditd cannot run in a container (${facts.container}): the audit subsystem is not namespaced` })]
        : [systemd.service({ name: 'auditd', enabled: true, state: 'started' })]),

      // Security updates only, unattended; pending updates exported for Prometheus.
      ...updatesTasks(v),

      // Time
      ...(inContainer
        ? [meta.skip({ what: 'chrony service', reason: 'a container cannot set the clock (chrony needs CAP_SYS_TIME); the host keeps time' })]
        : [systemd.service({ name: 'chrony', enabled: true, state: 'started' })]),

      // Persistent journal
      files.directory({ path: '/var/log/journal', mode: '2755', owner: 'root', group: 'systemd-journal' }),
      files.directory({ path: '/etc/systemd/journald.conf.d', mode: '0755', owner: 'root', group: 'root' }),
      files.template({ src: 'journald.conf.hbs', dest: '/etc/systemd/journald.conf.d/10-infra.conf', mode: '0644', owner: 'root', group: 'root', notify: 'restart journald' }),

      // Judges: file integrity last (its first database sees the finished baseline), then Lynis.
      ...integrityTasks(v),
      ...lynisTasks(v, facts, Object.keys(sysctls)),
    ]);
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
    [CATCH_UP_HANDLER]: catchUpHandler(),
    // Last: after the handlers above, the files are as this run leaves them.
    [AIDE_HANDLER]: aide.update({}),
  },
});


/**
 * Every change this role makes re-baselines AIDE at the end of the play, so a run of infra
 * never raises a file-integrity alarm (a hand edit still does).
 */
function rebaselineAide(tasks: Task[]): Task[] {
  return tasks.map((t) => (t.module.name === 'meta.skip' ? t : { ...t, notify: [...t.notify, AIDE_HANDLER] }));
}

/**
 * Drops Diffie-Hellman group-exchange moduli below `minBits` (ssh-audit and the OpenSSH
 * hardening guides: 2048-bit groups are no longer enough). The file's 5th column is the size
 * minus one. No reload: sshd re-executes for every connection and reads the file then.
 */
function sshModuliTask(minBits: number): Task {
  const weak = `awk '$1 !~ /^#/ && $5 + 1 < ${minBits}' /etc/ssh/moduli | grep -q .`;
  return command.run({
    name: `remove Diffie-Hellman moduli under ${minBits} bits`,
    cmd: `awk '$1 ~ /^#/ || $5 + 1 >= ${minBits}' /etc/ssh/moduli > /etc/ssh/moduli.infra && chmod 0644 /etc/ssh/moduli.infra && mv /etc/ssh/moduli.infra /etc/ssh/moduli`,
    onlyIf: weak,
  });
}

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
