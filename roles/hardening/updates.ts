/**
 * Security updates that really arrive: the distribution's security suite in the apt sources
 * (minimal images often lack it, and unattended-upgrades then has nothing to install),
 * security-only unattended upgrades, needrestart that lists (never restarts) daemons, and
 * pending updates exported for Prometheus so `infra patch --check` and an alert agree.
 */
import { command, files, systemd, sh, type Facts, type Task } from 'infra';
import type { HardeningVars } from './role.js';

export const UPDATE_PACKAGES = ['needrestart', 'debsums', 'apt-show-versions', 'apt-listchanges'];

export const SECURITY_SOURCES = '/etc/apt/sources.list.d/infra-security.sources';

export interface SecuritySuite {
  uri: string;
  suite: string;
  components: string[];
  signedBy: string;
}

/** The security suite of the host's distribution (pure: from facts and vars). */
export function securitySuite(v: Pick<HardeningVars, 'security_mirror' | 'security_components'>, facts: Facts): SecuritySuite {
  const ubuntu = facts.os.id === 'ubuntu';
  return {
    // Debian's security team publishes on security.debian.org first (no mirror lag).
    uri: v.security_mirror ?? (ubuntu ? 'http://security.ubuntu.com/ubuntu' : 'http://security.debian.org/debian-security'),
    suite: `${facts.os.codename}-security`,
    components: v.security_components ?? (ubuntu ? ['main', 'restricted', 'universe', 'multiverse'] : ['main']),
    signedBy: ubuntu ? '/usr/share/keyrings/ubuntu-archive-keyring.gpg' : '/usr/share/keyrings/debian-archive-keyring.gpg',
  };
}

/** The deb822 file written when the distribution's own sources lack the suite. */
export function securitySources(s: SecuritySuite): string {
  return [
    '# Managed by infra (role hardening): the security suite, so security updates arrive.',
    'Types: deb',
    `URIs: ${s.uri}`,
    `Suites: ${s.suite}`,
    `Components: ${s.components.join(' ')}`,
    `Signed-By: ${s.signedBy}`,
    '',
  ].join('\n');
}

/**
 * Makes sure the security suite is configured exactly once: where the distribution's sources
 * already have it (a cloud image's debian.sources, Ubuntu's sources.list), our file is not
 * written (or removed); otherwise it is, followed by apt-get update. Read-only guard.
 */
export const CATCH_UP_HANDLER = 'install pending security updates';

export function securitySuiteTask(v: HardeningVars, facts: Facts): Task {
  const s = securitySuite(v, facts);
  const content = securitySources(s);
  const elsewhere =
    sh`apt-get indextargets --no-release-info --format ${'$(RELEASE) $(TARGET_OF) $(SOURCESENTRY)'}` +
    sh` | grep -v ${` ${SECURITY_SOURCES}:`} | grep -q ${`^${s.suite} deb `}`;
  const ours = sh`printf '%s' ${content} | cmp -s - ${SECURITY_SOURCES}`;
  return command.run({
    name: `security suite ${s.suite} in the apt sources`,
    cmd:
      `if ${elsewhere}; then ${sh`rm -f ${SECURITY_SOURCES}`}; else ${sh`printf '%s' ${content} > ${SECURITY_SOURCES}`}; fi` +
      ' && apt-get -q -o DPkg::Lock::Timeout=120 update && mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp',
    unless: `if ${elsewhere}; then ${sh`[ ! -e ${SECURITY_SOURCES} ]`}; else ${ours}; fi`,
    timeoutMs: 10 * 60_000,
    // A host that could not see security updates until now gets them in this run, not tomorrow.
    notify: v.security_catch_up ? CATCH_UP_HANDLER : [],
  });
}

/**
 * The catch-up: unattended-upgrades' own run (security origins only, as configured), in one
 * dpkg transaction instead of its interruptible small steps, then fresh metrics.
 */
export const catchUpHandler = (): Task =>
  command.run({
    name: 'install pending security updates (unattended-upgrade)',
    cmd: 'unattended-upgrade --no-minimal-upgrade-steps && systemctl restart infra-apt-metrics.service',
    timeoutMs: 30 * 60_000,
  });

export function updatesTasks(v: HardeningVars): Task[] {
  const metricsFile = `${v.textfile_dir}/apt.prom`;
  return [
    files.template({ src: 'unattended-upgrades.conf.hbs', dest: '/etc/apt/apt.conf.d/52infra-unattended-upgrades', mode: '0644', owner: 'root', group: 'root' }),
    files.template({ src: 'needrestart.conf.hbs', dest: '/etc/needrestart/conf.d/90-infra.conf', mode: '0644', owner: 'root', group: 'root' }),

    // Pending updates for node exporter's textfile collector.
    files.directory({ path: v.textfile_dir, mode: '0755', owner: 'root', group: 'root' }),
    files.template({ src: 'apt-metrics.sh.hbs', dest: '/usr/local/sbin/infra-apt-metrics', mode: '0755', owner: 'root', group: 'root' }),
    ...systemd.scheduledJob({
      name: 'infra-apt-metrics',
      description: 'Export pending apt updates for Prometheus (infra hardening)',
      exec: '/usr/local/sbin/infra-apt-metrics',
      schedule: 'hourly',
      randomDelay: '5min',
    }),
    // And after every apt update and dpkg run, so the numbers follow reality within seconds.
    files.template({ src: 'apt-metrics-hook.conf.hbs', dest: '/etc/apt/apt.conf.d/80infra-apt-metrics', mode: '0644', owner: 'root', group: 'root' }),
    command.run({ name: 'first export of pending updates', cmd: 'systemctl start infra-apt-metrics.service', creates: metricsFile }),
  ];
}
