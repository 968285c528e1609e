/**
 * pgBackRest (pure). The repository lives on the backup host, never on a database host.
 * Transport: pgBackRest's own TLS protocol (tls-server-*) with the host certificates —
 * chosen over SSH because it needs no key exchange between the postgres and repository
 * accounts, and hardening opens SSH to the jump host only; every peer is authorized by its
 * certificate's CN, per stanza.
 *   database members: archive_command pushes WAL to the repository; a TLS server lets the
 *                     repository host run backups there.
 *   repository host:  encrypted repository (cipher pass from the vault), stanza, the first
 *                     full backup, timers for full/diff backups and the daily verification.
 */
import { apt, command, files, meta, systemd, sh, privateAddress, type Task } from 'infra';
import type { PostgresVars } from './vars.js';
import type { Cluster } from './topology.js';
import { TLS, tlsTasks } from './tls.js';
import { timerTasks, type Paths } from './layout.js';

const CONF_DIR = '/etc/pgbackrest';
const CONF = `${CONF_DIR}/pgbackrest.conf`;
const SCRIPT = '/usr/local/sbin/infra-pgbackrest';

const confDir = (): Task => files.directory({ path: CONF_DIR, mode: '0750', owner: 'postgres', group: 'postgres' });

export function archivingTasks(v: PostgresVars, address: string, cluster: Cluster, p: Paths): Task[] {
  if (!cluster.backup) {
    return [meta.skip({ what: 'WAL archiving and backups', reason: `no host in group ${v.postgres_backup_group} (or postgres_backup.enabled is false): backups need a repository on another host` })];
  }
  const b = v.postgres_backup;
  return [
    confDir(),
    files.template({
      src: 'pgbackrest.conf.hbs',
      dest: CONF,
      mode: '0640',
      owner: 'postgres',
      group: 'postgres',
      vars: {
        repo: { name: cluster.backup.name, address: privateAddress(cluster.backup) },
        listen: address,
        port: b.port,
        stanza: b.stanza,
        processMax: b.process_max,
        dataDir: p.data,
        pgPort: v.postgres_port,
        tls: TLS,
      },
      notify: 'restart pgbackrest',
    }),
    systemd.service({ name: 'pgbackrest', enabled: true, state: 'started' }),
  ];
}

export function repositoryTasks(v: PostgresVars, address: string, cluster: Cluster, p: Paths, sources: Task[]): Task[] {
  const b = v.postgres_backup;
  const members = [cluster.primary, ...cluster.replicas].map((m, i) => ({ index: i + 1, name: m.name, address: privateAddress(m) }));
  const asPostgres = (args: string) => `cd / && runuser -u postgres -- pgbackrest --stanza=${b.stanza} ${args}`;
  return [
    ...sources,
    // postgresql (server binaries, no cluster) to start a restored copy during verification.
    apt.packages({ names: ['pgbackrest', `postgresql-${v.postgres_version}`, 'jq'] }),
    ...tlsTasks(v.postgres_tls, address, ['restart pgbackrest']),
    files.directory({ path: b.repo_path, mode: '0750', owner: 'postgres', group: 'postgres' }),
    confDir(),
    files.template({
      src: 'pgbackrest-repo.conf.hbs',
      dest: CONF,
      mode: '0640',
      owner: 'postgres',
      group: 'postgres',
      sensitive: true,
      vars: {
        repoPath: b.repo_path,
        cipherPass: b.cipher_pass,
        retentionDays: b.retention_days,
        processMax: b.process_max,
        listen: address,
        port: b.port,
        stanza: b.stanza,
        memberNames: members.map((m) => m.name),
        members,
        dataDir: p.data,
        pgPort: v.postgres_port,
        tls: TLS,
      },
      notify: 'restart pgbackrest',
    }),
    systemd.service({ name: 'pgbackrest', enabled: true, state: 'started' }),
    // Until the stanza exists the members' archive_command keeps retrying its push, and each
    // push holds the repository's archive lock for a moment: a lock refusal (exit 50) is
    // waited out, any other failure is reported at once.
    command.run({
      name: `stanza ${b.stanza}`,
      cmd: `(tries=0; until ${asPostgres('stanza-create')}; do rc=$?; tries=$((tries + 1)); if [ "$rc" != 50 ] || [ "$tries" -ge 30 ]; then exit "$rc"; fi; sleep 2; done)`,
      creates: `${b.repo_path}/backup/${b.stanza}/backup.info`,
    }),

    // Backups and their verification, reporting to the node exporter's textfile collector.
    files.template({
      src: 'infra-pgbackrest.sh.hbs',
      dest: SCRIPT,
      mode: '0755',
      owner: 'root',
      group: 'root',
      vars: { stanza: b.stanza, verifyDir: b.verify_dir, textfileDir: b.textfile_dir, bin: p.bin },
    }),
    files.directory({ path: b.textfile_dir, mode: '0755' }),
    files.directory({ path: b.verify_dir, mode: '0700', owner: 'postgres', group: 'postgres' }),
    // An empty repository is no backup: the first full one is taken now, not at the first timer.
    command.run({
      name: 'first full backup',
      cmd: sh`${SCRIPT} backup full`,
      unless: `${asPostgres('--output=json info')} | jq -e '.[0].backup | length > 0'`,
      timeoutMs: 6 * 3600_000,
    }),
    ...timerTasks('infra-pgbackrest-full', `pgBackRest full backup of ${b.stanza} (role postgres)`, 'root', `${SCRIPT} backup full`, b.full_schedule),
    ...timerTasks('infra-pgbackrest-diff', `pgBackRest differential backup of ${b.stanza} (role postgres)`, 'root', `${SCRIPT} backup diff`, b.diff_schedule),
    ...timerTasks('infra-pgbackrest-verify', `pgBackRest check, verify and test restore of ${b.stanza} (role postgres)`, 'root', `${SCRIPT} verify`, b.verify_schedule),
  ];
}
