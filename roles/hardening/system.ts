/**
 * The kernel's attack surface and the system's memory: no core dumps (they hold secrets from
 * memory), unused network protocols and removable storage that can never be loaded, process
 * accounting (acct) and activity history (sysstat) for after-the-fact questions.
 */
import { files, meta, systemd, type Facts, type Task } from 'infra';
import type { HardeningVars } from './role.js';

export const SYSTEM_PACKAGES = ['acct', 'sysstat'];

/** sysctl keys a container can set: those of its own network namespace (net.ipv4, net.ipv6). */
export const settableInContainer = (key: string): boolean => /^net\.ipv[46]\./.test(key);

export function systemTasks(v: HardeningVars, facts: Facts): Task[] {
  const inContainer = facts.container !== 'none';
  return [
    // Core dumps off three ways: PAM limits, systemd-coredump, and login shells (profile.d, accounts.ts).
    files.template({ src: 'limits-coredump.conf.hbs', dest: '/etc/security/limits.d/90-infra-coredump.conf', mode: '0644', owner: 'root', group: 'root' }),
    files.directory({ path: '/etc/systemd/coredump.conf.d', mode: '0755', owner: 'root', group: 'root' }),
    files.template({ src: 'coredump.conf.hbs', dest: '/etc/systemd/coredump.conf.d/90-infra.conf', mode: '0644', owner: 'root', group: 'root' }),

    files.directory({ path: '/etc/modprobe.d', mode: '0755', owner: 'root', group: 'root' }),
    files.template({ src: 'modprobe-blacklist.conf.hbs', dest: '/etc/modprobe.d/90-infra-blacklist.conf', mode: '0644', owner: 'root', group: 'root' }),

    // sysstat: collect every 10 minutes (sysstat-collect.timer), keep the history.
    files.line({ path: '/etc/default/sysstat', regexp: '^ENABLED=', line: 'ENABLED="true"' }),
    systemd.service({ name: 'sysstat', enabled: true, state: 'started' }),
    systemd.service({ name: 'sysstat-collect.timer', enabled: true, state: 'started' }),
    ...(inContainer
      ? [meta.skip({ what: 'process accounting (acct)', reason: `accton needs CAP_SYS_PACCT, which a container (${facts.container}) does not have; installed for the boot of a VM` })]
      : [systemd.service({ name: 'acct', enabled: true, state: 'started' })]),
  ];
}
