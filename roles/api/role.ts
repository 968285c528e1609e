/**
 * api: the Node.js application servers. Node.js (the configured major) and PM2 (a pinned
 * version from the npm registry), the app under an unprivileged user in PM2 cluster mode
 * (one worker per CPU) started by a systemd unit the role writes, its secrets from the vault
 * in an environment file, releases deployed from an artifact with an atomic `current` switch
 * and a graceful reload, nginx in front, log rotation, and the Docker engine.
 *
 * Rolling deploys: in a play with `serial: 1` (playbooks/deploy-api.yaml) each host is taken
 * out of the load balancers (HAProxy's admin socket on the `lb` hosts) before its switch and
 * put back once its /health answers the new version; a failing health check stops the play
 * with that host drained and the others untouched.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { defineRole, z, apt, app, command, files, meta, systemd, users, sh, privateAddress, vaultSecret, Secret, UserError, type HostView } from 'infra';
import { PM2_BIN, PM2_DIR, nodeTasks } from './node.js';
import { nginxHandlers, nginxPackages, nginxTasks, nginxVars, realIpSources } from './nginx.js';
import { dockerHandlers, dockerTasks, dockerVars } from './docker.js';
import { EXAMPLE_APP, NODESOURCE_KEY_FILE } from './shipped.js';

const UNIT = 'pm2-api';
const CONF_DIR = '/etc/api';
const ENV_FILE = `${CONF_DIR}/app.env`;
const ECOSYSTEM = `${CONF_DIR}/ecosystem.config.js`;
const LOG_DIR = '/var/log/api';

const absPath = z.string().regex(/^\/[A-Za-z0-9_./-]*$/, 'an absolute path without spaces or shell characters');
const account = z.string().regex(/^[a-z_][a-z0-9_-]*$/, 'an account name');
const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name (A-Z, 0-9, _)')
  .refine((n) => !['NODE_ENV', 'PORT', 'APP_SECRET'].includes(n), 'set by the role (api_port, api_secret)');

export const vars = z.object({
  api_node_major: z.union([z.literal(18), z.literal(20), z.literal(22), z.literal(24)]).default(18),
  /** ASCII-armored key of NodeSource's repository; default: files/nodesource.asc. */
  api_nodesource_key: z.string().optional(),
  api_pm2_version: z.string().regex(/^\d+\.\d+\.\d+$/, 'an exact version such as 6.0.8').default('6.0.8'),
  api_npm_registry: z.string().url().default('https://registry.npmjs.org/'),
  api_user: account.default('api'),
  /** Holds releases/ and current (root-owned: the app cannot rewrite its code). */
  api_root: absPath.default('/srv/api'),
  /** The app user's home: PM2_HOME (.pm2) and npm's cache. */
  api_home: absPath.default('/var/lib/api'),
  /** On the controller: the app directory (or a .tar.gz), relative paths from the current directory; default: the role's example app. */
  api_app_src: z.string().min(1).optional().describe("the app directory or .tar.gz on the controller; default: the role's example app (files/app)"),
  /** The release name; default: "version" of the app's package.json. */
  api_app_version: z.string().optional(),
  api_app_script: z.string().regex(/^[A-Za-z0-9_./-]+$/).default('server.js'),
  api_port: z.number().int().min(1024).max(65535).default(3000),
  /** PM2 cluster workers; default: the host's CPUs. */
  api_instances: z.number().int().min(1).optional(),
  api_max_memory_restart: z.string().regex(/^\d+[KMG]$/, 'a size such as 512M').default('512M'),
  /** The app sends process.send('ready') once listening (the example does): reloads wait for it. */
  api_wait_ready: z.boolean().default(true),
  api_secret: vaultSecret('api_secret', { file: 'group_vars/api.yaml' }),
  /** More environment for the app; vault values stay secret. */
  api_env: z.record(envName, z.union([z.string(), z.instanceof(Secret)])).default({}),
  api_keep_releases: z.number().int().min(2).default(5),
  api_health_path: z.string().regex(/^\/[A-Za-z0-9_./-]*$/).default('/health'),
  api_health_timeout_s: z.number().int().min(1).default(60),
  api_nginx: nginxVars,
  /** The load balancers: real_ip is trusted from them, deploys drain through them. */
  api_lb_group: z.string().default('lb'),
  /** More addresses/CIDRs to trust X-Forwarded-For from (a cloud load balancer). */
  api_real_ip_from: z.array(z.string().regex(/^[0-9a-fA-F.:]+(\/\d{1,3})?$/)).default([]),
  api_drain: z.boolean().default(true),
  api_haproxy_backend: z.string().default('api'),
  api_exporter_port: z.number().int().min(1).max(65535).default(9113),
  api_docker: dockerVars,
  /** The docker group is root-equivalent: the app user joins it only when this says so. */
  api_docker_access: z.boolean().default(false),
  api_log_retention_days: z.number().int().min(1).default(14),
});
export type ApiVars = z.output<typeof vars>;

export default defineRole({
  name: 'api',
  vars,
  tasks: ({ vars: v, host, hosts, inventory }) => {
    if (v.api_docker_access && !v.api_docker.enabled) {
      throw new UserError('api_docker_access is true but api_docker.enabled is false', { hint: 'enable the engine, or leave the app user out of the docker group' });
    }
    const lbs = safeHosts(hosts, v.api_lb_group);
    const instances = v.api_instances ?? Math.max(1, host.facts.cpus);
    const current = `${v.api_root}/current`;
    const ecosystem = {
      apps: [
        {
          name: 'api',
          script: `${current}/${v.api_app_script}`,
          cwd: current,
          exec_mode: 'cluster',
          instances,
          wait_ready: v.api_wait_ready,
          listen_timeout: 10_000,
          kill_timeout: 5_000,
          max_memory_restart: v.api_max_memory_restart,
          merge_logs: true,
          time: true,
          out_file: `${LOG_DIR}/out.log`,
          error_file: `${LOG_DIR}/error.log`,
        },
      ],
    };

    return [
      apt.packages({ names: [...nginxPackages, ...(v.api_docker.enabled ? ['docker.io'] : []), 'logrotate', 'curl'] }),
      ...nodeTasks(v, host.facts, new Date().toISOString().slice(0, 10), () => readFileSync(NODESOURCE_KEY_FILE, 'utf8')),

      // The app's account and its places: code (root's), config, state (PM2_HOME), logs.
      users.user({
        name: v.api_user,
        system: true,
        home: v.api_home,
        shell: '/usr/sbin/nologin',
        comment: 'api application (PM2)',
        groups: v.api_docker_access ? ['docker'] : [],
        append: false,
      }),
      files.directory({ path: v.api_home, mode: '0750', owner: v.api_user, group: v.api_user }),
      files.directory({ path: v.api_root, mode: '0755', owner: 'root', group: 'root' }),
      files.directory({ path: `${v.api_root}/releases`, mode: '0755', owner: 'root', group: 'root' }),
      files.directory({ path: CONF_DIR, mode: '0750', owner: 'root', group: v.api_user }),
      files.directory({ path: LOG_DIR, mode: '0750', owner: v.api_user, group: v.api_user }),

      // Nginx in front. The release's health check goes through it, as the load balancers' does:
      // a changed site must be live before that, not at the end of the play.
      ...nginxTasks(
        { nginx: v.api_nginx, appPort: v.api_port, healthPath: v.api_health_path, realIpFrom: realIpSources(lbs, v.api_real_ip_from) },
        { listen: `${privateAddress({ address: host.address, vars: inventory.hosts.get(host.name)!.vars })}:${v.api_exporter_port}` },
      ),
      meta.flushHandlers({}),

      // PM2: environment (secrets), ecosystem, unit, log rotation.
      files.template({
        src: 'app.env.hbs',
        dest: ENV_FILE,
        mode: '0600',
        owner: v.api_user,
        group: v.api_user,
        sensitive: true,
        vars: { appEnv: { port: v.api_port, secret: v.api_secret, extra: v.api_env } },
        notify: 'reload pm2',
      }),
      files.template({
        src: 'ecosystem.config.js.hbs',
        dest: ECOSYSTEM,
        mode: '0640',
        owner: 'root',
        group: v.api_user,
        validate: 'node --check < %s', // stdin: node refuses the temp file's extension
        vars: { ecosystem },
        notify: 'reload pm2',
      }),
      systemd.unit({
        name: UNIT,
        src: 'pm2-api.service.hbs',
        vars: {
          unit: { user: v.api_user, home: v.api_home, pm2Home: `${v.api_home}/.pm2`, envFile: ENV_FILE, ecosystem: ECOSYSTEM, bin: PM2_BIN, instances, stopTimeoutS: 30 },
        },
        notify: 'restart pm2',
      }),
      files.template({
        src: 'logrotate-pm2.hbs',
        dest: '/etc/logrotate.d/pm2-api',
        mode: '0644',
        owner: 'root',
        group: 'root',
        validate: 'logrotate -d %s',
        vars: { logs: { dir: LOG_DIR, days: v.api_log_retention_days, user: v.api_user, pm2Home: `${v.api_home}/.pm2`, bin: PM2_BIN } },
      }),

      // The release: artifact → releases/<version> → (drained) switch, graceful reload, health → back in rotation.
      app.release({
        root: v.api_root,
        artifact: v.api_app_src === undefined ? EXAMPLE_APP : isAbsolute(v.api_app_src) ? v.api_app_src : resolve(v.api_app_src),
        version: v.api_app_version,
        user: v.api_user,
        install: `npm ci --omit=dev --no-audit --no-fund --registry ${v.api_npm_registry}`,
        activate: `systemctl reload-or-restart ${UNIT}`,
        health: { url: `http://127.0.0.1:${v.api_nginx.port}${v.api_health_path}`, versionField: 'version', timeoutMs: v.api_health_timeout_s * 1000 },
        keep: v.api_keep_releases,
        drain:
          v.api_drain && lbs.length
            ? { hosts: lbs.map((h) => h.name), backend: v.api_haproxy_backend, server: host.name }
            : undefined,
      }),
      systemd.service({ name: UNIT, enabled: true, state: 'started' }),

      ...dockerTasks(v.api_docker, host.facts),
    ];
  },
  handlers: {
    // Only a daemon started before its unit or PM2 changed is restarted (not drained: PM2
    // upgrades and unit changes are rare); the first start, by the release, needs none.
    'restart pm2': command.run({
      name: `restart ${UNIT} if it runs an older unit or PM2`,
      cmd: `systemctl restart ${UNIT}`,
      unless:
        sh`! systemctl is-active --quiet ${UNIT} || ` +
        sh`[ "$(date -d "$(systemctl show -p ActiveEnterTimestamp --value ${UNIT})" +%s)" -ge "$(stat -c %Y ${`/etc/systemd/system/${UNIT}.service`} ${PM2_DIR} | sort -n | tail -1)" ]`,
    }),
    // Graceful: the workers are replaced one by one with the new environment and ecosystem.
    'reload pm2': systemd.reload(UNIT),
    ...nginxHandlers,
    ...dockerHandlers,
  },
});

function safeHosts(hosts: (pattern: string) => HostView[], pattern: string): HostView[] {
  try {
    return hosts(pattern);
  } catch {
    return [];
  }
}
