/**
 * restic: every host's files and configuration backed up to the backup host, the way the
 * restic docs set up an SFTP repository — encrypted with a password from the vault, pushed
 * over SSH with a key made on the client, one chrooted SFTP-only user per client on the
 * repository host (a client reaches its own repository and nothing else), daily backups and
 * a daily `restic check --read-data-subset` from systemd timers, results for Prometheus in
 * the node exporter's textfile collector.
 *
 * Two sides, one role: hosts of `restic_repository_group` (backup1) hold the repositories;
 * every other host the play runs on is a client. Clients first (site.yaml: they make their
 * key), then the repository host (it copies each client's public key).
 */
import { defineRole, z, systemd, vaultSecret } from 'infra';
import { clientTasks } from './client.js';
import { repositoryTasks } from './repository.js';

const absolutePath = z.string().regex(/^\/[^\n\0]*$/, 'an absolute path');
/** systemd OnCalendar=, e.g. "*-*-* 02:15:00" (checked by systemd-analyze calendar on the host at reload). */
const calendar = z.string().regex(/^[A-Za-z0-9*:,./~ -]+$/, 'a systemd calendar expression such as "*-*-* 02:15:00"');

export const vars = z.object({
  /** The group whose (first) host holds the repositories. */
  restic_repository_group: z.string().default('backup'),
  /** Clients the repository host accepts: a host pattern (the hosts the client play runs on). */
  restic_clients: z.string().default('all:!backup'),
  /** Where the repositories live on the repository host: <root>/restic-<host>/repo. */
  restic_repository_root: absolutePath.default('/srv/restic'),
  /** Master secret: each host's repository password is derived from it and the host's name. */
  restic_password: vaultSecret('restic_password', { file: 'group_vars/all.yaml' }),
  /** Backed up on every client (/etc always). */
  restic_paths: z.array(absolutePath).default(['/etc']),
  /** Added for hosts of a group: data directories, application releases. */
  restic_paths_by_group: z.record(z.array(absolutePath)).default({ redis: ['/var/lib/redis'], api: ['/srv/api'] }),
  /** restic --exclude patterns. */
  restic_excludes: z.array(z.string().regex(/^[^\n]+$/)).default([]),
  /** Inside the nightly maintenance window (prod: 02:00-04:00), spread by the random delay. */
  restic_backup_on_calendar: calendar.default('*-*-* 02:15:00'),
  restic_check_on_calendar: calendar.default('*-*-* 03:30:00'),
  restic_randomized_delay_sec: z.number().int().min(0).default(900),
  /** `restic forget --keep-daily N --prune` after each backup: 30 days of daily snapshots. */
  restic_keep_daily: z.number().int().min(1).default(30),
  /** Share of the repository's data the daily check reads back and verifies ("5%", "1/7"). */
  restic_check_read_data_subset: z.string().regex(/^(\d+(\.\d+)?%|\d+\/\d+)$/, 'a percentage ("5%") or n/t ("1/7")').default('5%'),
  /** The node exporter's textfile collector directory: the variable roles node-exporter, hardening and postgres share. */
  textfile_dir: absolutePath.default('/var/lib/prometheus/node-exporter'),
  ssh_port: z.number().int().min(1).max(65535).default(22),
});
export type ResticVars = z.infer<typeof vars>;

export default defineRole({
  name: 'restic',
  vars,
  tasks: ({ vars: v, host, hosts }) =>
    host.groups.includes(v.restic_repository_group) ? repositoryTasks(v, hosts) : clientTasks(v, host, hosts),
  handlers: {
    'reload ssh': systemd.reload('ssh'),
  },
});
