/**
 * File integrity monitoring: AIDE watches the system's configuration and programs. The
 * database is made after the baseline is applied and re-made on purpose whenever infra (the
 * role's `update aide database` handler, aide.update in any role) or dpkg changes watched files;
 * a daily check reports everything else, for Prometheus and in the journal.
 */
import { aide, command, files, systemd, type Task } from 'infra';
import type { HardeningVars } from './role.js';

export const INTEGRITY_PACKAGES = ['aide'];

export const AIDE_DB = '/var/lib/aide/aide.db.gz';

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
    systemd.unit({
      name: 'infra-aide-check.service',
      src: 'oneshot.service.hbs',
      vars: { description: 'Check files against the AIDE database (infra hardening)', exec: '/usr/local/sbin/infra-aide check' },
    }),
    systemd.unit({
      name: 'infra-aide-check.timer',
      src: 'timer.hbs',
      vars: { description: 'Daily AIDE check (infra hardening)', calendar: v.aide_check_schedule, delay: '1h' },
    }),
    systemd.service({ name: 'infra-aide-check.timer', enabled: true, state: 'started' }),
    v.aide_rebaseline_after_dpkg
      ? files.template({ src: 'aide-hook.conf.hbs', dest: '/etc/apt/apt.conf.d/80infra-aide', mode: '0644', owner: 'root', group: 'root' })
      : files.absent({ path: '/etc/apt/apt.conf.d/80infra-aide' }),
    // The first database (later ones come from the handler).
    command.run({ name: 'initialise the AIDE database', cmd: `systemctl start ${aide.UPDATE_UNIT}`, creates: AIDE_DB, timeoutMs: 30 * 60_000 }),
  ];
}
