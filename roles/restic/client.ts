/**
 * A backed-up host (pure): restic with its own repository on the repository host, the tools
 * on-call uses (infra-restic, infra-backup, infra-restore), and the timers.
 */
import { createHmac } from 'node:crypto';
import { apt, command, files, restic, systemd, privateAddress, quote, sh, Secret, type HostView, type Task } from 'infra';
import { CLIENT_KEY, clientUser, repositoryHost } from './repository.js';
import type { ResticVars } from './role.js';

/** Written by the role on every client (the backup script writes restic-backup/-check.prom). */
const CONFIGURED_METRIC = [
  '# HELP restic_backup_configured 1: this host is a restic client (role restic); its backups are expected.',
  '# TYPE restic_backup_configured gauge',
  'restic_backup_configured 1',
  '',
].join('\n');

export const CONF_DIR = '/etc/restic';
/** The ssh_config Host (and HostKeyAlias) naming the repository host: its address may change, its key may not. */
export const REPOSITORY_ALIAS = 'restic-repository';
/** The client's repository, as its chroot on the repository host shows it. */
export const REPOSITORY = `sftp:${REPOSITORY_ALIAS}:/repo`;
const SFTP_COMMAND = `ssh -F ${CONF_DIR}/ssh_config ${REPOSITORY_ALIAS} -s sftp`;

/**
 * Each host's repository password: derived from the vault's master secret and the host's name,
 * so that a host knows its own and no other (a rebuilt host of the same name gets it back).
 */
export function repositoryPassword(master: Secret, host: string): Secret {
  return new Secret(createHmac('sha256', master.reveal()).update(`restic repository ${host}`).digest('base64url'), 'restic password');
}

/** /etc always (restic_paths), plus what the host's groups add, in order, once each. */
export function backupPaths(v: ResticVars, groups: string[]): string[] {
  return [...new Set([...v.restic_paths, ...groups.flatMap((g) => v.restic_paths_by_group[g] ?? [])])];
}

export function clientTasks(v: ResticVars, host: { name: string; groups: string[] }, hosts: (p: string) => HostView[]): Task[] {
  const repo = repositoryHost(v, hosts);
  const unitVars = { onCalendar: v.restic_backup_on_calendar, checkOnCalendar: v.restic_check_on_calendar, delay: v.restic_randomized_delay_sec };
  return [
    apt.packages({ names: ['restic', 'openssh-client', 'jq'] }),
    files.directory({ path: CONF_DIR, owner: 'root', group: 'root', mode: '0700' }),
    // The client's own key: made here, never leaves the host (the repository host copies the .pub).
    command.run({ cmd: sh`ssh-keygen -q -t ed25519 -N '' -C ${`restic@${host.name}`} -f ${CLIENT_KEY}`, creates: CLIENT_KEY }),
    files.file({ path: `${CONF_DIR}/password`, content: repositoryPassword(v.restic_password, host.name), owner: 'root', group: 'root', mode: '0600' }),
    restic.peerKey({ peer: repo.name, src: '/etc/ssh/ssh_host_ed25519_key.pub', dest: `${CONF_DIR}/known_hosts`, prefix: REPOSITORY_ALIAS, owner: 'root', group: 'root', mode: '0644' }),
    files.template({
      src: 'ssh_config.hbs',
      dest: `${CONF_DIR}/ssh_config`,
      owner: 'root',
      group: 'root',
      mode: '0600',
      vars: { alias: REPOSITORY_ALIAS, address: privateAddress(repo), port: v.ssh_port, user: clientUser(host.name), key: CLIENT_KEY, knownHosts: `${CONF_DIR}/known_hosts` },
    }),
    files.file({ path: `${CONF_DIR}/paths`, content: lines(backupPaths(v, host.groups)), owner: 'root', group: 'root', mode: '0644' }),
    files.file({ path: `${CONF_DIR}/excludes`, content: lines(v.restic_excludes), owner: 'root', group: 'root', mode: '0644' }),
    files.directory({ path: '/var/cache/restic', owner: 'root', group: 'root', mode: '0700' }),
    files.directory({ path: v.textfile_dir, owner: 'root', group: 'root', mode: '0755' }),
    // Says a backup is expected here: alerts fire when the timers never write a result.
    files.file({ path: `${v.textfile_dir}/restic-configured.prom`, content: CONFIGURED_METRIC, owner: 'root', group: 'root', mode: '0644' }),

    // The tools: every one of them sets the repository up the same way (infra-restic).
    files.template({
      src: 'infra-restic.sh.hbs',
      dest: '/usr/local/sbin/infra-restic',
      owner: 'root',
      group: 'root',
      mode: '0755',
      vars: { repository: quote(REPOSITORY), password: quote(`${CONF_DIR}/password`), sftp: quote(SFTP_COMMAND), repositoryHost: repo.name },
    }),
    files.template({
      src: 'infra-backup.sh.hbs',
      dest: '/usr/local/sbin/infra-backup',
      owner: 'root',
      group: 'root',
      mode: '0755',
      vars: { textfileDir: quote(v.textfile_dir), keepDaily: v.restic_keep_daily, subset: quote(v.restic_check_read_data_subset), confDir: CONF_DIR },
    }),
    files.template({ src: 'infra-restore.sh.hbs', dest: '/usr/local/sbin/infra-restore', owner: 'root', group: 'root', mode: '0755' }),

    // Timers: Persistent= catches up a run missed while the host was down.
    systemd.unit({ name: 'infra-backup.service', src: 'infra-backup.service.hbs', vars: unitVars }),
    systemd.unit({ name: 'infra-backup.timer', src: 'infra-backup.timer.hbs', vars: unitVars }),
    systemd.unit({ name: 'infra-backup-check.service', src: 'infra-backup-check.service.hbs', vars: unitVars }),
    systemd.unit({ name: 'infra-backup-check.timer', src: 'infra-backup-check.timer.hbs', vars: unitVars }),
    systemd.service({ name: 'infra-backup.timer', enabled: true, state: 'started' }),
    systemd.service({ name: 'infra-backup-check.timer', enabled: true, state: 'started' }),
  ];
}

const lines = (list: string[]): string => list.map((l) => `${l}\n`).join('');
