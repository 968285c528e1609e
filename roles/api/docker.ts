/**
 * Docker engine (Debian's docker.io) with a daemon.json written from variables (pure):
 * rotated json-file logs, live-restore (dockerd restarts without stopping containers), and
 * the storage driver from facts — vfs inside a container, where overlayfs cannot stack.
 */
import { files, meta, systemd, z, type Facts, type Task } from 'infra';

export const DAEMON_JSON = '/etc/docker/daemon.json';

export const dockerVars = z
  .object({
    enabled: z.boolean().default(true),
    /** "auto": vfs inside a container, Docker's own choice (overlay2) elsewhere. */
    storage_driver: z.union([z.literal('auto'), z.enum(['overlay2', 'vfs', 'btrfs', 'zfs', 'fuse-overlayfs'])]).default('auto'),
    log_max_size: z.string().regex(/^\d+[kmg]$/, 'a size such as 10m').default('10m'),
    log_max_file: z.number().int().min(1).default(3),
    live_restore: z.boolean().default(true),
    /** Extra daemon.json keys (default-address-pools, registry-mirrors ...), merged last. */
    extra: z.record(z.unknown()).default({}),
  })
  .strict()
  .default({});
export type DockerVars = z.output<typeof dockerVars>;

export function storageDriver(d: DockerVars, facts: Pick<Facts, 'container'>): string | undefined {
  if (d.storage_driver !== 'auto') return d.storage_driver;
  return facts.container !== 'none' ? 'vfs' : undefined;
}

export function daemonConfig(d: DockerVars, facts: Pick<Facts, 'container'>): Record<string, unknown> {
  const driver = storageDriver(d, facts);
  return {
    'log-driver': 'json-file',
    'log-opts': { 'max-size': d.log_max_size, 'max-file': String(d.log_max_file) },
    'live-restore': d.live_restore,
    ...(driver ? { 'storage-driver': driver } : {}),
    ...d.extra,
  };
}

export function dockerTasks(d: DockerVars, facts: Pick<Facts, 'container'>): Task[] {
  if (!d.enabled) return [meta.skip({ what: 'Docker engine', reason: 'api_docker.enabled is false' })];
  return [
    files.directory({ path: '/etc/docker', mode: '0755', owner: 'root', group: 'root' }),
    // JSON has no comments (dockerd refuses them): the "managed by infra" note is the README's.
    // Debian 12's dockerd (20.10) has no --validate; the file is built from typed variables.
    files.file({
      path: DAEMON_JSON,
      content: `${JSON.stringify(daemonConfig(d, facts), null, 2)}\n`,
      mode: '0644',
      owner: 'root',
      group: 'root',
      notify: 'restart docker',
    }),
    systemd.service({ name: 'docker', enabled: true, state: 'started' }),
  ];
}

export const dockerHandlers = {
  // live-restore keeps the containers running across this restart.
  'restart docker': systemd.restart('docker'),
};
