/**
 * File integrity monitoring: AIDE watches the system's configuration and programs. The
 * database is made at the end of the play that installs this (the `update aide database`
 * handler: every task of the role notifies it) and re-made on purpose whenever infra
 * (aide.update, in any role) or dpkg changes watched files; a daily check reports everything
 * else, for Prometheus and in the journal. A database that disappears later is an alarm
 * (aide_up 0), never silently re-made.
 */
import { aide, files, systemd, type Task } from 'infra';
import type { HardeningVars } from './role.js';

export const INTEGRITY_PACKAGES = ['aide'];

export function integrityTasks(v: HardeningVars): Task[] {
  return [
    // Only the aide binary package: Debian's aide-common would bring its own whole-system rules.
    files.directory({ path: '/etc/aide', mode: '0755', owner: 'root', group: 'root' }),
    files.template({ src: 'aide.conf.hbs', dest: '/etc/aide/aide.conf', mode: '0600', owner: 'root', group: 'root', validate: 'aide --config %s --config-check' }),
    files.template({ src: 'aide.sh.hbs', dest: '/usr/local/sbin/infra-aide', mode: '0755', owner: 'root', group: 'root' }),
    systemd.unit({
      name: aide.UPDATE_UNIT,
      src: 'oneshot.service.hbs',
      vars: { description: 'Re-baseline the AIDE database after a deliberate change (infra hardening)', exec: '/usr/local/sbin/infra-aide update' },
    }),
    ...systemd.scheduledJob({
      name: 'infra-aide-check',
      description: 'Check files against the AIDE database (infra hardening)',
      exec: '/usr/local/sbin/infra-aide check',
      schedule: v.aide_check_schedule,
      randomDelay: '1h',
    }),
    v.aide_rebaseline_after_dpkg
      ? files.template({ src: 'aide-hook.conf.hbs', dest: '/etc/apt/apt.conf.d/80infra-aide', mode: '0644', owner: 'root', group: 'root' })
      : files.absent({ path: '/etc/apt/apt.conf.d/80infra-aide' }),
  ];
}
