/**
 * roles/api with no host: the task list from vars + facts (Node.js source per distribution
 * and major, the end-of-life warning, PM2 workers from CPUs, Docker's storage driver from
 * facts, the docker group, drain and real_ip from the lb group) and every template rendered.
 */
import { describe, it, expect } from 'vitest';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import role, { vars as apiVars } from '../../../roles/api/role.js';
import { EXAMPLE_APP } from '../../../roles/api/shipped.js';
import { endOfLifeWarning, nodeSource, NODE_END_OF_LIFE } from '../../../roles/api/node.js';
import { daemonConfig } from '../../../roles/api/docker.js';
import { createRenderer } from '../../../src/render/template.js';
import { Secret } from '../../../src/secrets/secret.js';
import type { Task } from '../../../src/modules/types.js';
import type { Facts } from '../../../src/facts/types.js';
import { contextFor, fakeInventory } from './context.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SECRET = new Secret('unit-api-secret-"quoted"');

const inv = fakeInventory({
  hosts: {
    lb1: { address: '10.20.0.11', groups: ['lb'], vars: { private_address: '10.30.0.11' } },
    lb2: { address: '10.20.0.12', groups: ['lb'] },
    api1: { address: '10.20.0.21', groups: ['api'] },
    api2: { address: '10.20.0.22', groups: ['api'] },
  },
  groups: { api: { vars: { api_secret: SECRET } } },
});

const UBUNTU: Partial<Facts> = { os: { id: 'ubuntu', versionId: '22.04', codename: 'jammy', prettyName: 'Ubuntu 22.04.4 LTS', family: 'debian' } };
const ctx = (opts: { facts?: Partial<Facts>; vars?: Record<string, unknown> } = {}) => contextFor(apiVars, inv, 'api1', opts);
const tasksOf = (opts: Parameters<typeof ctx>[0] = {}) => role.tasks(ctx(opts));
const ofModule = (tasks: Task[], name: string) => tasks.filter((t) => t.module.name === name).map((t) => t.params as Record<string, unknown>);
const one = (tasks: Task[], name: string, where: (p: Record<string, unknown>) => boolean = () => true) => {
  const found = ofModule(tasks, name).filter(where);
  expect(found, name).toHaveLength(1);
  return found[0];
};
const packages = (tasks: Task[]) => ofModule(tasks, 'apt.packages').flatMap((p) => p.names as string[]);

describe('Node.js source per distribution and major', () => {
  it('Debian 12, Node 18: the distribution packages (nodejs + npm), no extra source', () => {
    const t = tasksOf();
    expect(ofModule(t, 'apt.repository')).toEqual([]);
    expect(packages(t)).toEqual(expect.arrayContaining(['nodejs', 'npm']));
  });

  it('Debian 12, Node 20: NodeSource deb822 source with its key, nodejs from it (npm bundled)', () => {
    const t = tasksOf({ vars: { api_node_major: 20 } });
    const repo = one(t, 'apt.repository');
    expect(repo).toMatchObject({ name: 'nodesource', uris: 'https://deb.nodesource.com/node_20.x', suites: 'nodistro', components: ['main'] });
    expect(repo.key).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    expect(one(t, 'apt.packages', (p) => (p.names as string[]).includes('nodejs'))).toMatchObject({ names: ['nodejs'], state: 'latest' });
    expect(packages(t)).not.toContain('npm');
    // The task list differs from Node 18's by exactly the source and the package set.
    expect(t.map((x) => x.module.name)).not.toEqual(tasksOf().map((x) => x.module.name));
  });

  it('Ubuntu 22.04 ships Node 12: even Node 18 comes from NodeSource', () => {
    expect(nodeSource(18, UBUNTU as Facts)).toBe('nodesource');
    expect(one(tasksOf({ facts: UBUNTU }), 'apt.repository').uris).toBe('https://deb.nodesource.com/node_18.x');
  });

  it('an operator key replaces the shipped one; a major the role does not know is refused', () => {
    const key = '-----BEGIN PGP PUBLIC KEY BLOCK-----\nmine\n-----END PGP PUBLIC KEY BLOCK-----';
    expect(one(tasksOf({ vars: { api_node_major: 22, api_nodesource_key: key } }), 'apt.repository').key).toBe(key);
    expect(() => ctx({ vars: { api_node_major: 16 } })).toThrow();
  });

  it('PM2 at the pinned version into /usr/local, checked without starting a root daemon', () => {
    const pm2 = one(tasksOf(), 'command.run', (p) => String(p.cmd).includes('pm2@'));
    expect(pm2.cmd).toBe('npm install --global --prefix /usr/local --no-fund --no-audit --registry https://registry.npmjs.org/ pm2@6.0.8');
    expect(pm2.unless).toContain('/usr/local/lib/node_modules/pm2/package.json');
    expect(pm2.unless).not.toMatch(/pm2 -v|pm2 --version/);
  });
});

describe('end of life', () => {
  it.each([
    [18, '2025-04-29', undefined],
    [18, '2025-04-30', /^Node\.js 18 reached its end of life on 2025-04-30: it gets no security fixes; move to 20/],
    [18, '2026-11-30', /move to 22 \(api_node_major: 22, installed from NodeSource\)$/],
    [22, '2026-11-30', undefined],
  ] as const)('Node %i on %s', (major, today, want) => {
    const w = endOfLifeWarning(major, today);
    if (want === undefined) expect(w).toBeUndefined();
    else expect(w).toMatch(want);
  });

  it('the role warns (meta.warn) for a major past its end of life, first thing', () => {
    const t = tasksOf();
    expect(new Date().toISOString().slice(0, 10) >= NODE_END_OF_LIFE[18]).toBe(true);
    expect(t.findIndex((x) => x.module.name === 'meta.warn')).toBeLessThan(t.findIndex((x) => x.module.name === 'command.run'));
    expect(one(t, 'meta.warn').message).toMatch(/^Node\.js 18 reached its end of life/);
  });
});

describe('the app, PM2 and the release', () => {
  it('the app user is unprivileged and NOT in the docker group unless api_docker_access says so', () => {
    expect(one(tasksOf(), 'users.user')).toMatchObject({ name: 'api', system: true, shell: '/usr/sbin/nologin', home: '/var/lib/api', groups: [], append: false });
    expect(one(tasksOf({ vars: { api_docker_access: true } }), 'users.user').groups).toEqual(['docker']);
    expect(() => tasksOf({ vars: { api_docker_access: true, api_docker: { enabled: false } } })).toThrow(/api_docker_access is true but api_docker.enabled is false/);
  });

  it('the env file holds the vault secret, 0600 owned by the app user, and its diff is hidden', () => {
    const env = one(tasksOf(), 'files.template', (p) => p.dest === '/etc/api/app.env');
    expect(env).toMatchObject({ mode: '0600', owner: 'api', group: 'api', sensitive: true });
    expect(() => ctx({ vars: { api_secret: 'plain text' } })).toThrow(/must be a !vault value, not clear text.*infra vault encrypt-string --name api_secret --stdin/);
  });

  it('PM2 workers: one per CPU by default, api_instances overrides', () => {
    const instancesOf = (t: Task[]) => ((one(t, 'files.template', (p) => p.dest === '/etc/api/ecosystem.config.js').vars as { ecosystem: { apps: { instances: number }[] } }).ecosystem.apps[0].instances);
    expect(instancesOf(tasksOf({ facts: { cpus: 4 } }))).toBe(4);
    expect(instancesOf(tasksOf({ facts: { cpus: 4 }, vars: { api_instances: 2 } }))).toBe(2);
  });

  it('the release: the example app by default, drained through every lb, health through nginx', () => {
    const rel = one(tasksOf(), 'app.release');
    expect(rel).toMatchObject({
      root: '/srv/api',
      artifact: EXAMPLE_APP,
      user: 'api',
      activate: 'systemctl reload-or-restart pm2-api',
      health: { url: 'http://127.0.0.1:80/health', versionField: 'version', timeoutMs: 60_000 },
      drain: { hosts: ['lb1', 'lb2'], backend: 'api', server: 'api1' },
    });
    expect(rel.install).toMatch(/^npm ci --omit=dev /);
    expect(one(tasksOf({ vars: { api_drain: false } }), 'app.release').drain).toBeUndefined();
    expect(one(tasksOf({ vars: { api_lb_group: 'nolb' } }), 'app.release').drain).toBeUndefined();
    // The release comes after nginx (its health check goes through it) and before the service is enabled.
    const names = tasksOf().map((t) => `${t.module.name} ${JSON.stringify(t.params).slice(0, 60)}`);
    const at = (re: RegExp) => names.findIndex((n) => re.test(n));
    // nginx's new site is live (handlers flushed) before the release's health check.
    expect(at(/^files.template .*nginx-site/)).toBeLessThan(at(/^meta.flushHandlers/));
    expect(at(/^meta.flushHandlers/)).toBeLessThan(at(/^files.template .*app\.env/));
    expect(at(/^meta.flushHandlers/)).toBeLessThan(at(/^app.release/));
    expect(at(/^app.release/)).toBeLessThan(at(/^systemd.service .*pm2-api/));
  });
});

describe('Docker', () => {
  const d = apiVars.shape.api_docker.parse(undefined);
  it('daemon.json: rotated logs, live-restore, vfs only inside a container', () => {
    expect(daemonConfig(d, { container: 'docker' })).toEqual({
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '10m', 'max-file': '3' },
      'live-restore': true,
      'storage-driver': 'vfs',
    });
    expect(daemonConfig(d, { container: 'none' })).not.toHaveProperty('storage-driver');
    expect(daemonConfig({ ...d, storage_driver: 'overlay2' }, { container: 'docker' })['storage-driver']).toBe('overlay2');
  });

  it('the role writes it from facts; disabled: no package, a skip that says why', () => {
    const file = one(tasksOf({ facts: { container: 'docker' } }), 'files.file', (p) => p.path === '/etc/docker/daemon.json');
    expect(JSON.parse(String(file.content))['storage-driver']).toBe('vfs');
    const off = tasksOf({ vars: { api_docker: { enabled: false } } });
    expect(packages(off)).not.toContain('docker.io');
    expect(one(off, 'meta.skip').reason).toBe('api_docker.enabled is false');
  });
});

describe('templates', () => {
  const renderer = createRenderer({ sharedDir: join(REPO, 'templates') });
  async function render(opts: Parameters<typeof ctx>[0] = {}) {
    const c = ctx(opts);
    const out = new Map<string, string>();
    for (const t of role.tasks(c)) {
      const p = t.params as { src?: string; vars?: Record<string, unknown> };
      if (!['files.template', 'systemd.unit'].includes(t.module.name) || !p.src) continue;
      const data = { vars: { ...(c.vars as Record<string, unknown>), ...p.vars }, host: { name: 'api1', address: '10.20.0.21', groups: ['api'] }, facts: c.host.facts };
      out.set(p.src, await renderer.renderFile(join(REPO, 'roles/api'), p.src, data));
    }
    return out;
  }

  it('every template is used and renders', async () => {
    const out = await render();
    const { readdirSync } = await import('node:fs');
    expect([...out.keys()].sort()).toEqual(readdirSync(join(REPO, 'roles/api/templates')).sort());
    for (const text of out.values()) expect(text).not.toMatch(/undefined|\[object Object\]/);
  });

  it('nginx: no version, real_ip from the load balancers only, /health passed through, sane limits', async () => {
    const site = (await render()).get('nginx-site.conf.hbs')!;
    expect(site).toMatch(/^\s*server_tokens off;$/m);
    expect(site.match(/set_real_ip_from \S+;/g)).toEqual(['set_real_ip_from 10.30.0.11;', 'set_real_ip_from 10.20.0.12;']);
    expect(site).toMatch(/location = \/health \{\n\s*access_log off;\n\s*proxy_pass http:\/\/api_app;/);
    expect(site).toMatch(/client_max_body_size 1m;/);
    expect(site).toMatch(/proxy_read_timeout 30s;/);
    expect(site).toMatch(/gzip_types application\/json text\/plain text\/css application\/javascript;/);
    expect(site).toMatch(/server 127\.0\.0\.1:3000;/);
    expect(site).toMatch(/listen 127\.0\.0\.1:8080;\n[\s\S]*stub_status;/);
  });

  it('the unit runs pm2-runtime as the app user and reloads gracefully', async () => {
    const unit = (await render({ facts: { cpus: 3 } })).get('pm2-api.service.hbs')!;
    expect(unit).toMatch(/^User=api$/m);
    expect(unit).toMatch(/^Environment=PM2_HOME=\/var\/lib\/api\/\.pm2$/m);
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/api\/app\.env$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/pm2-runtime start \/etc\/api\/ecosystem\.config\.js$/m);
    expect(unit).toMatch(/^ExecReload=\/usr\/local\/bin\/pm2 reload \/etc\/api\/ecosystem\.config\.js --update-env$/m);
    expect(unit).toMatch(/^ExecReload=-\/usr\/local\/bin\/pm2 scale api 3$/m);
  });

  it('the ecosystem file is JavaScript PM2 can load: cluster mode, the current release', async () => {
    const text = (await render({ facts: { cpus: 2 } })).get('ecosystem.config.js.hbs')!;
    const module = { exports: {} as { apps: Record<string, unknown>[] } };
    runInNewContext(text, { module });
    expect(module.exports.apps[0]).toMatchObject({ name: 'api', script: '/srv/api/current/server.js', cwd: '/srv/api/current', exec_mode: 'cluster', instances: 2, wait_ready: true });
  });

  it('the env file: the secret quoted for systemd, extra variables after it', async () => {
    const env = (await render({ vars: { api_env: { LOG_LEVEL: 'info' } } })).get('app.env.hbs')!;
    expect(env).toContain('APP_SECRET="unit-api-secret-\\"quoted\\""');
    expect(env).toMatch(/^PORT=3000$/m);
    expect(env).toMatch(/^LOG_LEVEL="info"$/m);
  });

  it('logrotate: daily, kept api_log_retention_days, files reopened only when PM2 runs', async () => {
    const conf = (await render({ vars: { api_log_retention_days: 7 } })).get('logrotate-pm2.hbs')!;
    expect(conf).toMatch(/^\/var\/log\/api\/\*\.log \{$/m);
    expect(conf).toMatch(/^\s*rotate 7$/m);
    expect(conf).toMatch(/systemctl is-active --quiet pm2-api; then runuser -u api -- env PM2_HOME=\/var\/lib\/api\/\.pm2 \/usr\/local\/bin\/pm2 reloadLogs/);
  });

  it('the exporter listens on the private address and waits for stub_status at start (no crash loop into the start limit)', async () => {
    const args = (await render()).get('nginx-exporter.default.hbs')!;
    expect(args).toContain('ARGS="-nginx.scrape-uri=http://127.0.0.1:8080/stub_status -web.listen-address=10.20.0.21:9113 -nginx.retries=30 -nginx.retry-interval=1s"');
  });
});
