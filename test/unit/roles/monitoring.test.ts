/**
 * roles/monitoring, node-exporter and journal-upload with no host: the scrape configuration
 * from the inventory, the alert rules (`promtool check config` with them, `promtool test
 * rules` against the fixtures next to this file), Alertmanager's routing (`amtool
 * check-config`, `amtool config routes test`), the Grafana stack's files parsed and checked
 * without its binaries, the certificate-expiry script run here, Ubuntu 22.04, the shipped
 * inventories, and a runbook page for every alert.
 *
 * promtool and amtool come from Debian's packages (test/image/ensure-prom-tools.sh, which
 * `npm test` runs): without them these tests fail with that reason, they never skip.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import monitoring, { vars as monitoringVars, RULE_FILES } from '../../../roles/monitoring/role.js';
import { DASHBOARDS } from '../../../roles/monitoring/grafana.js';
import nodeExporter, { vars as nodeExporterVars } from '../../../roles/node-exporter/role.js';
import journalUpload, { vars as journalUploadVars } from '../../../roles/journal-upload/role.js';
import { createRenderer } from '../../../src/render/template.js';
import { Secret } from '../../../src/secrets/secret.js';
import { UserError } from '../../../src/errors.js';
import { loadInventory } from '../../../src/inventory/load.js';
import { lockedDecryptor } from '../../../src/engine/input.js';
import type { Task } from '../../../src/modules/types.js';
import type { Facts } from '../../../src/facts/types.js';
import type { Inventory } from '../../../src/inventory/types.js';
import type { RoleContext } from '../../../src/playbook/role.js';
import { contextFor, fakeInventory, type FakeInventory } from './context.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..', '..');
const renderer = createRenderer({ sharedDir: join(REPO, 'templates') });
const UBUNTU: Partial<Facts> = { os: { id: 'ubuntu', versionId: '22.04', codename: 'jammy', prettyName: 'Ubuntu 22.04.4 LTS', family: 'debian' } };

const PAGER = 'https://pager.test/v1/enqueue?routing_key=k3y-pager';
const CHAT = 'https://chat.test/hooks/T0/B0/s3cr3t-chat';
const DB_PAGER = 'https://pager.test/v1/enqueue?routing_key=k3y-db';

const FLEET: FakeInventory = {
  hosts: {
    bastion: { address: '203.0.113.10', groups: ['bastion'], vars: { private_address: '10.20.0.2' } },
    lb1: { address: '10.20.0.11', groups: ['lb'], bastion: 'bastion' },
    lb2: { address: '10.20.0.12', groups: ['lb'], bastion: 'bastion' },
    api1: { address: '10.20.0.21', groups: ['api'], bastion: 'bastion' },
    // db1's exporter listens where its own role's variable says.
    db1: { address: '10.20.0.31', groups: ['postgres_primary'], bastion: 'bastion', vars: { postgres_exporter: { port: 9188 } } },
    db2: { address: '10.20.0.32', groups: ['postgres_replica'], bastion: 'bastion' },
    redis1: { address: '10.20.0.41', groups: ['redis_master', 'sentinel'], bastion: 'bastion' },
    redis2: { address: '10.20.0.42', groups: ['redis_replica', 'sentinel'], bastion: 'bastion' },
    mon1: { address: '10.20.0.51', groups: ['monitoring', 'sentinel'], bastion: 'bastion' },
    backup1: { address: '10.20.0.61', groups: ['backup'], bastion: 'bastion' },
  },
  groups: {
    postgres: { children: ['postgres_primary', 'postgres_replica'] },
    redis: { children: ['redis_master', 'redis_replica'] },
    lb: { vars: { vip: '10.20.0.10', haproxy_tls: { source: 'pki' } } },
    monitoring: {
      vars: {
        alertmanager_receivers: {
          platform: { pager: { url: new Secret(PAGER), token: new Secret('b3arer-t0ken') }, chat: { url: new Secret(CHAT) } },
          database: { pager: { url: new Secret(DB_PAGER) } },
        },
        grafana_stack: { enabled: false, reason: 'the repository is unreachable here' },
      },
    },
  },
};
const inv = fakeInventory(FLEET);

type Ctx<V> = RoleContext<V>;
const params = (t: Task) => t.params as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const byModule = (tasks: Task[], name: string) => tasks.filter((t) => t.module.name === name);
const monCtx = (opts: Parameters<typeof contextFor>[3] = {}, inventory: Inventory = inv, host = 'mon1') => contextFor(monitoringVars, inventory, host, opts);

/** dest → rendered text, for every files.template and templated systemd.unit of the task list. */
async function render<V>(role: string, ctx: Ctx<V>, tasks: Task[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const t of tasks) {
    const p = params(t);
    const src = t.module.name === 'files.template' ? p.src : t.module.name === 'systemd.unit' ? p.src : undefined;
    if (!src) continue;
    const dest = p.dest ?? (p.dropIn ? `/etc/systemd/system/${p.name}.d/${p.dropIn}.conf` : `/etc/systemd/system/${p.name}`);
    const data = { vars: { ...(ctx.vars as Record<string, unknown>), ...p.vars }, host: { name: ctx.host.name, address: ctx.host.address, groups: ctx.host.groups }, facts: ctx.host.facts };
    out.set(dest, await renderer.renderFile(join(REPO, 'roles', role), src, data));
  }
  return out;
}

/** promtool / amtool on PATH; the test fails (never skips) when one is missing. */
function tool(name: 'promtool' | 'amtool'): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || !path) throw new Error(`${name} is not installed on this machine: run \`bash test/image/ensure-prom-tools.sh\` (npm test runs it through test/image/prepare.sh)`);
  return path;
}
const runTool = (name: 'promtool' | 'amtool', args: string[], cwd?: string) => spawnSync(tool(name), args, { cwd, encoding: 'utf8' });

let work: string;
let files: Map<string, string>;
let tasks: Task[];
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'infra-monitoring-unit-'));
  const ctx = monCtx();
  tasks = monitoring.tasks(ctx);
  files = await render('monitoring', ctx, tasks);
  mkdirSync(join(work, 'rules'));
  writeFileSync(join(work, 'prometheus.yml'), files.get('/etc/prometheus/prometheus.yml')!);
  for (const r of RULE_FILES) writeFileSync(join(work, 'rules', `${r}.yml`), files.get(`/etc/prometheus/rules/${r}.yml`)!);
  writeFileSync(join(work, 'alertmanager.yml'), files.get('/etc/prometheus/alertmanager.yml')!);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

// ------------------------------------------------------------------ Prometheus

interface ScrapeConfig {
  job_name: string;
  metrics_path: string;
  static_configs: { targets: string[]; labels: Record<string, string> }[];
}
const scrapeConfigs = (): ScrapeConfig[] => parse(files.get('/etc/prometheus/prometheus.yml')!).scrape_configs;
const job = (name: string) => {
  const j = scrapeConfigs().find((s) => s.job_name === name);
  if (!j) throw new Error(`no job ${name}`);
  return j;
};
const targetsOf = (name: string) => job(name).static_configs.map((s) => `${s.labels.instance}=${s.targets.join(',')}`);

describe('prometheus.yml from the inventory', () => {
  it('node on every host, at the address the others see (the bastion: its private address)', () => {
    expect(targetsOf('node')).toEqual([
      'bastion=10.20.0.2:9100',
      'lb1=10.20.0.11:9100',
      'lb2=10.20.0.12:9100',
      'api1=10.20.0.21:9100',
      'db1=10.20.0.31:9100',
      'db2=10.20.0.32:9100',
      'redis1=10.20.0.41:9100',
      'redis2=10.20.0.42:9100',
      'mon1=10.20.0.51:9100',
      'backup1=10.20.0.61:9100',
    ]);
  });

  it('each exporter on its group, at the port its own role uses (db1 sets postgres_exporter.port)', () => {
    expect(targetsOf('postgres')).toEqual(['db1=10.20.0.31:9188', 'db2=10.20.0.32:9187']);
    expect(targetsOf('redis')).toEqual(['redis1=10.20.0.41:9121', 'redis2=10.20.0.42:9121']);
    expect(targetsOf('haproxy')).toEqual(['lb1=10.20.0.11:8404', 'lb2=10.20.0.12:8404']);
    expect(job('haproxy').metrics_path).toBe('/metrics');
    // The api role's nginx exporter: on the api group, at its api_exporter_port.
    expect(targetsOf('nginx')).toEqual(['api1=10.20.0.21:9113']);
    expect(targetsOf('prometheus')).toEqual(['mon1=10.20.0.51:9090']);
    expect(targetsOf('alertmanager')).toEqual(['mon1=10.20.0.51:9093']);
    expect(parse(files.get('/etc/prometheus/prometheus.yml')!).alerting.alertmanagers[0].static_configs[0].targets).toEqual(['10.20.0.51:9093']);
  });

  it('every Sentinel through a Redis host exporter: its own, else the first one', () => {
    const s = job('sentinel');
    expect(s.metrics_path).toBe('/scrape');
    expect(s.static_configs.map((c) => [c.labels.instance, c.targets[0], c.labels.__param_target])).toEqual([
      ['redis1', '10.20.0.41:9121', 'redis://10.20.0.41:26379'],
      ['redis2', '10.20.0.42:9121', 'redis://10.20.0.42:26379'],
      ['mon1', '10.20.0.41:9121', 'redis://10.20.0.51:26379'],
    ]);
  });

  it('the VIP through the local blackbox exporter: ICMP (is it on a node) and HTTPS against the internal CA', () => {
    expect(job('blackbox_icmp').static_configs).toEqual([{ targets: ['127.0.0.1:9115'], labels: { instance: '10.20.0.10', vip: '10.20.0.10', __param_target: '10.20.0.10', __param_module: 'icmp' } }]);
    expect(job('blackbox_https').static_configs[0].labels).toEqual({
      instance: 'https://10.20.0.10/health',
      vip: '10.20.0.10',
      __param_target: 'https://10.20.0.10/health',
      __param_module: 'https_internal_ca',
    });
    // A public certificate from the vault: the system's trust store.
    const pub = fakeInventory({ ...FLEET, groups: { ...FLEET.groups, lb: { vars: { vip: '10.20.0.10', haproxy_tls: { source: 'vault' } } } } });
    const t = monitoring.tasks(monCtx({}, pub));
    const yml = byModule(t, 'files.template').find((x) => params(x).src === 'prometheus.yml.hbs')!;
    const jobs = params(yml).vars.jobs as { name: string; targets: { labels: Record<string, string> }[] }[];
    expect(jobs.find((j) => j.name === 'blackbox_https')!.targets[0].labels.__param_module).toBe('https');
  });

  it('promtool check config accepts it together with every rule file it loads', () => {
    const r = runTool('promtool', ['check', 'config', 'prometheus.yml'], work);
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: prometheus\.yml is valid prometheus config file syntax/);
    for (const f of RULE_FILES) expect(r.stdout).toMatch(new RegExp(`Checking rules/${f}\\.yml\\s+SUCCESS`));
    expect(r.status).toBe(0);
  });

  it('…and refuses the config when a rule file it loads is broken (what the validate step catches before install)', () => {
    const dir = mkdtempSync(join(work, 'broken-'));
    mkdirSync(join(dir, 'rules'));
    copyFileSync(join(work, 'prometheus.yml'), join(dir, 'prometheus.yml'));
    writeFileSync(join(dir, 'rules', 'host.yml'), files.get('/etc/prometheus/rules/host.yml')!.replace('up{job="node"} == 0', 'up{job="node"} == == 0'));
    const r = runTool('promtool', ['check', 'config', 'prometheus.yml'], dir);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/rules\/host\.yml/);
  });

  it('the rule files are checked one by one as they are written (validate: promtool check rules)', () => {
    const rules = byModule(tasks, 'files.template').filter((t) => params(t).dest.startsWith('/etc/prometheus/rules/'));
    expect(rules.map((t) => params(t).validate)).toEqual(RULE_FILES.map(() => 'promtool check rules %s'));
    const config = byModule(tasks, 'files.template').find((t) => params(t).dest === '/etc/prometheus/prometheus.yml')!;
    expect(params(config).validate).toBe('promtool check config %s');
    // Rules first: the config's check reads the rule files already in place.
    expect(tasks.indexOf(config)).toBeGreaterThan(tasks.indexOf(rules[rules.length - 1]));
  });

  it("the daemons never run Debian's example configuration: masked before the first install, unmasked before the first start", () => {
    const names = tasks.map((t) => t.name ?? `${t.module.name} ${JSON.stringify(params(t)).slice(0, 40)}`);
    const mask = names.findIndex((n) => n.startsWith('mask the daemons'));
    const install = tasks.findIndex((t) => t.module.name === 'apt.packages' && params(t).names.includes('prometheus'));
    const unmask = names.findIndex((n) => n.startsWith('unmask the daemons'));
    const firstStart = tasks.findIndex((t) => t.module.name === 'systemd.service' && params(t).state === 'started');
    const lastConfig = tasks.findIndex((t) => t.module.name === 'files.template' && params(t).dest === '/etc/prometheus/prometheus.yml');
    expect([mask, install, lastConfig, unmask, firstStart].every((i, n, a) => i >= 0 && (n === 0 || i > a[n - 1]))).toBe(true);
    // Only where a daemon's package is not installed yet.
    expect(params(tasks[mask]).unless).toContain(`dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || exit 1`);
  });

  it('retention, listen address and no lifecycle endpoint in /etc/default/prometheus', async () => {
    const ctx = monCtx({ vars: { prometheus_retention: '30d', prometheus_retention_size: '40GB' } });
    const text = (await render('monitoring', ctx, monitoring.tasks(ctx))).get('/etc/default/prometheus')!;
    expect(text).toMatch(/--storage\.tsdb\.retention\.time=30d --storage\.tsdb\.retention\.size=40GB/);
    expect(text).toMatch(/--web\.listen-address=10\.20\.0\.51:9090/);
    expect(text).not.toMatch(/ARGS=.*enable-lifecycle/);
  });
});

describe('prometheus variables', () => {
  const jobsOf = (vars: Record<string, unknown>) => {
    const t = monitoring.tasks(monCtx({ vars }));
    return (params(byModule(t, 'files.template').find((x) => params(x).src === 'prometheus.yml.hbs')!).vars.jobs as { name: string }[]).map((j) => j.name);
  };

  it('exporters merge over the defaults; false removes one (and the Sentinels probed through it)', () => {
    expect(jobsOf({})).toEqual(['node', 'postgres', 'redis', 'haproxy', 'nginx', 'sentinel', 'blackbox_icmp', 'blackbox_https', 'prometheus', 'alertmanager']);
    expect(jobsOf({ prometheus_exporters: { mysql: { group: 'backup', port: 9104 } }, prometheus_sentinels: false })).toEqual([
      'node', 'postgres', 'redis', 'haproxy', 'nginx', 'mysql', 'blackbox_icmp', 'blackbox_https', 'prometheus', 'alertmanager',
    ]);
    expect(jobsOf({ prometheus_exporters: { haproxy: false }, prometheus_sentinels: false })).not.toContain('haproxy');
    expect(() => jobsOf({ prometheus_exporters: { redis: false } })).toThrow(/prometheus_sentinels\.via: "redis" is not an exporter job/);
  });

  it('a group that is not in the inventory is an input error naming the variable', () => {
    expect(() => jobsOf({ prometheus_exporters: { postgres: { group: 'postgress', port: 9187 } } })).toThrow(UserError);
    expect(() => jobsOf({ prometheus_exporters: { postgres: { group: 'postgress', port: 9187 } } })).toThrow(/prometheus_exporters\.postgres\.group: "postgress" is not a group/);
    expect(() => monitoring.tasks(monCtx({}, inv, 'api1'))).toThrow(/api1 is not in monitoring_group "monitoring"/);
  });

  it('bad values are refused before anything runs', () => {
    const bad = (v: Record<string, unknown>) => monitoringVars.safeParse(v).success;
    expect(bad({ prometheus_retention: '15 days' })).toBe(false);
    expect(bad({ monitoring_alerts: { disk_warning_percent: 185 } })).toBe(false);
    expect(bad({ monitoring_alerts: { host_dwon_for: '1m' } })).toBe(false);
    expect(bad({ alertmanager_receivers: { platform: { pager: { url: 'https://in-clear.example' } } } })).toBe(false);
    expect(bad({ grafana_admin_password: 'in-clear' })).toBe(false);
    expect(bad({ prometheus_exporters: { node: { group: 'all', port: 9100, path: 'metrics' } } })).toBe(false);
  });
});

// ------------------------------------------------------------------ rules

describe('alert rules', () => {
  it('promtool test rules: every alert fires where it must and not before its `for` (fixtures next to this file)', () => {
    const dir = mkdtempSync(join(work, 'rules-test-'));
    mkdirSync(join(dir, 'rules'));
    const ctx = monCtx({ vars: { monitoring_runbook_url: 'https://runbooks.test/' } });
    return render('monitoring', ctx, monitoring.tasks(ctx)).then((rendered) => {
      for (const r of RULE_FILES) writeFileSync(join(dir, 'rules', `${r}.yml`), rendered.get(`/etc/prometheus/rules/${r}.yml`)!);
      for (const f of ['monitoring.rules-test.yml', 'monitoring.rules-test-days.yml']) copyFileSync(join(HERE, f), join(dir, f));
      const r = runTool('promtool', ['test', 'rules', 'monitoring.rules-test.yml', 'monitoring.rules-test-days.yml'], dir);
      expect(r.stdout + r.stderr).not.toMatch(/FAILED/);
      expect((r.stdout.match(/SUCCESS/g) ?? []).length).toBe(2);
      expect(r.status).toBe(0);
    });
  });

  it('every alert of the rules is exercised by a promtool test', () => {
    const tested = new Set(
      ['monitoring.rules-test.yml', 'monitoring.rules-test-days.yml'].flatMap((f) =>
        (parse(readFileSync(join(HERE, f), 'utf8')).tests as { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[]).flatMap((t) =>
          t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
        ),
      ),
    );
    expect([...alertNames()].filter((a) => !tested.has(a))).toEqual([]);
  });

  it('thresholds and durations come from monitoring_alerts', async () => {
    const ctx = monCtx({ vars: { monitoring_alerts: { host_down_for: '5s', disk_warning_percent: 70, pg_lag_warning: '30s', backup_max_age_hours: 30 } } });
    const r = await render('monitoring', ctx, monitoring.tasks(ctx));
    const host = parse(r.get('/etc/prometheus/rules/host.yml')!).groups[0].rules;
    expect(host.find((x: { alert: string }) => x.alert === 'HostDown').for).toBe('5s');
    expect(host.find((x: { alert: string; labels: { severity: string } }) => x.alert === 'DiskSpaceLow' && x.labels.severity === 'warning').expr).toMatch(/> 70\n/);
    expect(r.get('/etc/prometheus/rules/postgres.yml')).toMatch(/offset 30s\)/);
    expect(r.get('/etc/prometheus/rules/backup.yml')).toMatch(/> 30 \* 3600/);
  });
});

/** Every alert name in the rendered rules. */
function alertNames(): Set<string> {
  const names = new Set<string>();
  for (const r of RULE_FILES) for (const g of parse(files.get(`/etc/prometheus/rules/${r}.yml`)!).groups) for (const rule of g.rules) names.add(rule.alert);
  return names;
}

describe('runbooks', () => {
  const dir = join(REPO, 'docs/runbooks');
  it('every alert links docs/runbooks/<alert>.md, and that page exists with symptoms, commands and a verification', () => {
    for (const r of RULE_FILES) {
      for (const g of parse(files.get(`/etc/prometheus/rules/${r}.yml`)!).groups) {
        for (const rule of g.rules) {
          expect(rule.annotations.runbook_url).toBe(`https://git.example.com/ops/infra/-/blob/main/docs/runbooks/${rule.alert}.md`);
          const page = join(dir, `${rule.alert}.md`);
          expect(existsSync(page), page).toBe(true);
          const text = readFileSync(page, 'utf8');
          expect(text.startsWith(`# ${rule.alert}`), page).toBe(true);
          for (const section of ['## Symptoms', '## What to do', '## Verify']) expect(text, `${page}: ${section}`).toContain(section);
          expect(text, page).toMatch(/infra (exec|run|apply|plan)/);
        }
      }
    }
  });

  it('no page for an alert that does not exist', () => {
    const pages = readdirSync(dir).filter((f) => f.endsWith('.md') && f !== 'README.md').map((f) => f.replace(/\.md$/, ''));
    expect(pages.filter((p) => !alertNames().has(p))).toEqual([]);
  });
});

describe('infra-reload (the checked reload handler), run here against a stand-in service', () => {
  /**
   * A service on loopback: /-/ready answers 503 until `readyAfter` requests, /metrics the
   * reload timestamp; a stub `systemctl reload` (first on PATH) bumps it when `loads` is true.
   */
  async function run(o: { readyAfter: number; loads: boolean }) {
    const dir = mkdtempSync(join(work, 'reload-'));
    const events: string[] = [];
    let readyAsked = 0;
    let stamp = '1.7e+09';
    const server = createServer((req, res) => {
      if (req.url === '/-/ready') {
        readyAsked++;
        events.push(readyAsked > o.readyAfter ? 'ready' : 'not ready');
        res.writeHead(readyAsked > o.readyAfter ? 200 : 503).end();
      } else if (req.url === '/reload') {
        events.push('reload');
        if (o.loads) stamp = String(Date.now() / 1000);
        res.end();
      } else res.end(`# TYPE prometheus_config_last_reload_success_timestamp_seconds gauge\nprometheus_config_last_reload_success_timestamp_seconds ${stamp}\n`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin/systemctl'), `#!/bin/sh\ncurl -fsS ${base}/reload\n`, { mode: 0o755 });
    writeFileSync(join(dir, 'bin/journalctl'), '#!/bin/sh\necho "(the journal)"\n', { mode: 0o755 });
    const ctx = monCtx();
    const script = join(dir, 'infra-reload');
    writeFileSync(script, (await render('monitoring', ctx, monitoring.tasks(ctx))).get('/usr/local/sbin/infra-reload')!.replace(/base='?http:\/\/10\.20\.0\.51:9090'?/, `base=${base}`));
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile('sh', [script, 'prometheus', '2'], { env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` }, timeout: 60_000 }, (err, _out, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    server.close();
    return { ...r, events };
  }

  it('waits until the service is ready before it sends the reload (a SIGHUP during start-up kills it)', async () => {
    const r = await run({ readyAfter: 3, loads: true });
    expect(r.code, r.stderr).toBe(0);
    expect(r.events).toEqual(['not ready', 'not ready', 'not ready', 'ready', 'reload']);
  });

  it('fails, with the journal, when the service does not load the new configuration', async () => {
    const r = await run({ readyAfter: 0, loads: false });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/prometheus: did not load its new configuration within 2 s\n\(the journal\)/);
  });
});

// ------------------------------------------------------------------ Alertmanager

describe('alertmanager.yml', () => {
  const routeOf = (...labels: string[]) => {
    const r = runTool('amtool', ['config', 'routes', 'test', '--config.file', join(work, 'alertmanager.yml'), ...labels]);
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.trim();
  };

  it('amtool check-config accepts it', () => {
    const r = runTool('amtool', ['check-config', join(work, 'alertmanager.yml')]);
    expect(r.stdout).toMatch(/SUCCESS/);
    expect(r.stdout).toMatch(/4 receivers/);
    expect(r.status).toBe(0);
  });

  it('routes by team and severity: critical → pager, warning → chat, info → nobody; other teams → the default team', () => {
    expect(routeOf('severity=critical', 'team=platform', 'alertname=HostDown')).toBe('platform-pager');
    expect(routeOf('severity=warning', 'team=platform', 'alertname=TargetDown')).toBe('platform-chat');
    expect(routeOf('severity=critical', 'team=database', 'alertname=PostgresDown')).toBe('database-pager');
    // database has no chat: its warnings go nowhere (not to another team's chat)
    expect(routeOf('severity=warning', 'team=database', 'alertname=BackupFailed')).toBe('blackhole');
    expect(routeOf('severity=info', 'team=platform', 'alertname=Anything')).toBe('blackhole');
    expect(routeOf('severity=critical', 'team=frontend', 'alertname=Whatever')).toBe('platform-pager');
    expect(routeOf('severity=warning', 'alertname=NoTeam')).toBe('platform-chat');
  });

  it('escalation by repetition, grouping, and the inhibitions (host down holds back its other alerts)', () => {
    const am = parse(files.get('/etc/prometheus/alertmanager.yml')!);
    expect(am.route.group_by).toEqual(['team', 'alertname']);
    const platform = am.route.routes.find((r: { matchers: string[] }) => r.matchers?.[0] === 'team="platform"');
    expect(platform.routes).toEqual([
      { matchers: ['severity="critical"'], receiver: 'platform-pager', repeat_interval: '30m' },
      { matchers: ['severity="warning"'], receiver: 'platform-chat', repeat_interval: '4h' },
    ]);
    expect(am.inhibit_rules[0]).toEqual({ source_matchers: ['alertname="HostDown"'], target_matchers: ['alertname!="HostDown"'], equal: ['instance'] });
    expect(am.inhibit_rules.map((r: { source_matchers: string[] }) => r.source_matchers[0])).toEqual([
      'alertname="HostDown"',
      'severity="critical"',
      'alertname="VipDown"',
      'alertname="HAProxyNoBackendUp"',
      'alertname="PostgresDown"',
    ]);
  });

  it('receiver URLs and tokens from the vault land only in the 0640 root:prometheus file', () => {
    const am = parse(files.get('/etc/prometheus/alertmanager.yml')!);
    const receiver = (name: string) => am.receivers.find((r: { name: string }) => r.name === name).webhook_configs[0];
    expect(receiver('platform-pager')).toEqual({ url: PAGER, send_resolved: true, http_config: { authorization: { type: 'Bearer', credentials: 'b3arer-t0ken' } } });
    expect(receiver('platform-chat').url).toBe(CHAT);
    const t = byModule(tasks, 'files.template').find((x) => params(x).dest === '/etc/prometheus/alertmanager.yml')!;
    expect([params(t).mode, params(t).owner, params(t).group, params(t).validate]).toEqual(['0640', 'root', 'prometheus', 'amtool check-config %s']);
    // The task itself carries the Secret objects, never the text (plans and events show the task).
    expect(JSON.stringify(params(t))).not.toContain('s3cr3t-chat');
  });

  it('no receivers: delivery is reported skipped; one Alertmanager alone does not gossip; several form a cluster', async () => {
    const none = monitoring.tasks(monCtx({ vars: { alertmanager_receivers: {} } }));
    expect(byModule(none, 'meta.skip').map((t) => params(t).what)).toContain('alert delivery');
    const single = files.get('/etc/default/prometheus-alertmanager')!;
    expect(single).toMatch(/--cluster\.listen-address="$/m);
    const two = fakeInventory({ ...FLEET, hosts: { ...FLEET.hosts, mon2: { address: '10.20.0.52', groups: ['monitoring'], bastion: 'bastion' } } });
    const ctx = monCtx({}, two);
    const r = await render('monitoring', ctx, monitoring.tasks(ctx));
    expect(r.get('/etc/default/prometheus-alertmanager')).toMatch(/--cluster\.listen-address=10\.20\.0\.51:9094 --cluster\.peer=10\.20\.0\.52:9094"/);
    expect(parse(r.get('/etc/prometheus/prometheus.yml')!).alerting.alertmanagers[0].static_configs[0].targets).toEqual(['10.20.0.51:9093', '10.20.0.52:9093']);
  });
});

// ------------------------------------------------------------------ blackbox, journal-remote

describe('blackbox and journal-remote', () => {
  it('blackbox modules verify HTTPS against the CA the host certificate task writes', () => {
    const bb = parse(files.get('/etc/prometheus/blackbox.yml')!);
    const cert = byModule(tasks, 'tls.certificate')[0];
    expect(bb.modules.https_internal_ca.http.tls_config.ca_file).toBe(params(cert).caPath);
    expect(Object.keys(bb.modules)).toEqual(['icmp', 'https_internal_ca', 'https']);
    expect(files.get('/etc/default/prometheus-blackbox-exporter')).toMatch(/--web\.listen-address=127\.0\.0\.1:9115/);
    // The certificate (and its CA) exist before the blackbox config is checked.
    const bbTask = byModule(tasks, 'files.template').find((x) => params(x).dest === '/etc/prometheus/blackbox.yml')!;
    expect(tasks.indexOf(cert)).toBeLessThan(tasks.indexOf(bbTask));
    expect(params(bbTask).validate).toBe('prometheus-blackbox-exporter --config.check --config.file=%s');
  });

  it('journal-remote: HTTPS with the host certificate (key readable by journal-remote only), on the private address', () => {
    const cert = params(byModule(tasks, 'tls.certificate')[0]);
    expect([cert.group, cert.keyMode]).toEqual(['systemd-journal-remote', '0640']);
    const conf = files.get('/etc/systemd/journal-remote.conf.d/infra.conf')!;
    expect(conf).toContain(`ServerKeyFile=${cert.keyPath}`);
    expect(conf).toContain(`ServerCertificateFile=${cert.certPath}`);
    expect(conf).toContain('SplitMode=host');
    expect(files.get('/etc/systemd/system/systemd-journal-remote.socket.d/infra.conf')).toMatch(/ListenStream=\nListenStream=10\.20\.0\.51:19532\n/);
    expect(files.get('/etc/systemd/system/infra-journal-remote-vacuum.service')).toMatch(/--vacuum-size=20G --vacuum-time=30d/);
  });
});

// ------------------------------------------------------------------ Grafana stack

describe('Loki, Alloy and Grafana (no binary here: parsed and checked)', () => {
  const enabled = (extra: Record<string, unknown> = {}) => monCtx({ vars: { grafana_stack: { key_fingerprint: '0'.repeat(40) }, ...extra } });
  let stack: Map<string, string>;
  let stackTasks: Task[];
  beforeAll(async () => {
    const ctx = enabled();
    stackTasks = monitoring.tasks(ctx);
    stack = await render('monitoring', ctx, stackTasks);
  });

  it('disabled (the lab): every part reported skipped with the reason', () => {
    expect(byModule(tasks, 'meta.skip').map((t) => `${params(t).what}: ${params(t).reason}`)).toEqual([
      'Grafana apt repository: the repository is unreachable here',
      'Loki (log store): the repository is unreachable here',
      'Alloy (received journals → Loki): the repository is unreachable here',
      'Grafana (datasources, dashboards): the repository is unreachable here',
    ]);
  });

  it("the repository: its key fetched over HTTPS and checked against the pinned fingerprint, then Grafana's packages", () => {
    const fetch = byModule(stackTasks, 'command.run').find((t) => params(t).creates === '/etc/apt/keyrings/grafana.asc')!;
    expect(params(fetch).cmd).toMatch(/curl -fsSL --proto =https https:\/\/apt\.grafana\.com\/gpg\.key /);
    expect(params(fetch).cmd).toContain(`grep -qx ${'0'.repeat(40)}`);
    expect(stack.get('/etc/apt/sources.list.d/grafana.sources')).toMatch(/URIs: https:\/\/apt\.grafana\.com\nSuites: stable\nComponents: main\nSigned-By: \/etc\/apt\/keyrings\/grafana\.asc/);
    expect(byModule(stackTasks, 'apt.packages').map((t) => params(t).names).flat()).toEqual(expect.arrayContaining(['loki', 'grafana', 'alloy', 'gnupg']));
  });

  it('loki: single binary on the private address, filesystem storage, retention by the compactor; checked by loki -verify-config', () => {
    const loki = parse(stack.get('/etc/loki/config.yml')!);
    expect(loki.server).toMatchObject({ http_listen_address: '10.20.0.51', http_listen_port: 3100, grpc_listen_address: '127.0.0.1' });
    expect(loki.auth_enabled).toBe(false);
    expect(loki.schema_config.configs[0]).toMatchObject({ store: 'tsdb', object_store: 'filesystem', schema: 'v13' });
    expect(loki.limits_config.retention_period).toBe('744h');
    expect(loki.compactor).toMatchObject({ retention_enabled: true, delete_request_store: 'filesystem' });
    const t = byModule(stackTasks, 'files.template').find((x) => params(x).dest === '/etc/loki/config.yml')!;
    expect(params(t).validate).toBe('loki -verify-config -config.file=%s');
  });

  it('alloy: the received journals into the local Loki; balanced blocks; checked by alloy fmt', () => {
    const text = stack.get('/etc/alloy/config.alloy')!;
    expect(text).toContain('path          = "/var/log/journal/remote"');
    expect(text).toContain('url = "http://10.20.0.51:3100/loki/api/v1/push"');
    expect(text).toMatch(/source_labels = \["__journal__hostname"\]\n\s+target_label\s+= "host"/);
    expect((text.match(/{/g) ?? []).length).toBe((text.match(/}/g) ?? []).length);
    const t = byModule(stackTasks, 'files.template').find((x) => params(x).dest === '/etc/alloy/config.alloy')!;
    expect(params(t).validate).toBe('alloy fmt %s');
    // Alloy reads journal-remote's files.
    expect(params(byModule(stackTasks, 'users.user')[0]).groups).toEqual(['systemd-journal', 'systemd-journal-remote']);
  });

  it('grafana: private address, no sign-up, datasources and dashboards provisioned from files', () => {
    const ini = stack.get('/etc/grafana/grafana.ini')!;
    expect(ini).toMatch(/\[server\]\nhttp_addr = 10\.20\.0\.51\nhttp_port = 3000/);
    expect(ini).toContain('admin_password = $__file{/etc/grafana/admin-password}');
    expect(ini).toMatch(/allow_sign_up = false/);
    const ds = parse(stack.get('/etc/grafana/provisioning/datasources/infra.yaml')!);
    expect(ds.datasources.map((d: { uid: string; type: string; url: string }) => `${d.uid} ${d.type} ${d.url}`)).toEqual(['prometheus prometheus http://10.20.0.51:9090', 'loki loki http://10.20.0.51:3100']);
    const dash = parse(stack.get('/etc/grafana/provisioning/dashboards/infra.yaml')!);
    expect(dash.providers[0]).toMatchObject({ type: 'file', options: { path: '/var/lib/grafana/dashboards/infra' } });
    const copies = byModule(stackTasks, 'files.copy').map((t) => params(t).dest);
    expect(copies).toEqual(DASHBOARDS.map((d) => `/var/lib/grafana/dashboards/infra/${d}.json`));
  });

  it('the admin password: the vault one when set, else made once on the host', () => {
    const made = byModule(stackTasks, 'command.run').find((t) => params(t).creates === '/etc/grafana/admin-password');
    expect(params(made!).cmd).toMatch(/openssl rand -base64 24/);
    const vaulted = monitoring.tasks(enabled({ grafana_admin_password: new Secret('gr4fana-admin') }));
    const file = byModule(vaulted, 'files.file').find((t) => params(t).path === '/etc/grafana/admin-password')!;
    expect(params(file).content).toBeInstanceOf(Secret);
    expect([params(file).mode, params(file).group]).toEqual(['0640', 'grafana']);
  });

  it('dashboards (hosts, PostgreSQL, Redis, HAProxy): valid JSON, unique uids, every panel queries the Prometheus datasource', () => {
    const uids = new Set<string>();
    for (const d of DASHBOARDS) {
      const board = JSON.parse(readFileSync(join(REPO, 'roles/monitoring/files/dashboards', `${d}.json`), 'utf8'));
      expect(uids.has(board.uid)).toBe(false);
      uids.add(board.uid);
      expect(board.panels.length).toBeGreaterThan(3);
      for (const p of board.panels) {
        expect(p.targets.length, `${d}: ${p.title}`).toBeGreaterThan(0);
        for (const t of p.targets) {
          expect(t.datasource).toEqual({ type: 'prometheus', uid: 'prometheus' });
          expect(t.expr).toMatch(/[a-z_]+/);
        }
      }
    }
  });
});

// ------------------------------------------------------------------ Ubuntu 22.04

describe('Ubuntu 22.04', () => {
  it("the same packages from the distribution (universe) and the same Grafana repository: nothing differs by distribution", () => {
    const names = (ts: Task[]) => byModule(ts, 'apt.packages').map((t) => params(t).names);
    const on = (facts: Partial<Facts>) => monitoring.tasks(monCtx({ facts, vars: { grafana_stack: {} } }));
    expect(names(on(UBUNTU))).toEqual(names(on({})));
    const debianSource = byModule(on({}), 'files.template').find((t) => params(t).src === 'grafana.sources.hbs');
    const ubuntuSource = byModule(on(UBUNTU), 'files.template').find((t) => params(t).src === 'grafana.sources.hbs');
    expect(params(ubuntuSource!)).toEqual(params(debianSource!));
    const ne = (facts: Partial<Facts>) => nodeExporter.tasks(contextFor(nodeExporterVars, inv, 'db1', { facts }));
    expect(names(ne(UBUNTU))).toEqual([['prometheus-node-exporter', 'openssl']]);
  });
});

// ------------------------------------------------------------------ node-exporter

describe('node-exporter', () => {
  it('listens on the private address, textfile directory shared with the hardening role', async () => {
    const ctx = contextFor(nodeExporterVars, inv, 'bastion', { vars: { node_exporter_port: 9200 } });
    const r = await render('node-exporter', ctx, nodeExporter.tasks(ctx));
    expect(r.get('/etc/default/prometheus-node-exporter')).toMatch(
      /ARGS="--web\.listen-address=10\.20\.0\.2:9200 --collector\.textfile\.directory=\/var\/lib\/prometheus\/node-exporter --collector\.systemd"/,
    );
    const dir = byModule(nodeExporter.tasks(ctx), 'files.directory').map((t) => params(t).path);
    expect(dir).toEqual(['/var/lib/prometheus/node-exporter']);
  });

  it('the certificate-expiry script, run here: one metric per certificate, keys skipped, accepted by promtool check metrics', async () => {
    const dir = mkdtempSync(join(work, 'certs-'));
    mkdirSync(join(dir, 'etc/haproxy/certs'), { recursive: true });
    mkdirSync(join(dir, 'out'));
    const pem = join(dir, 'etc/haproxy/certs/site.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${pem}.key`, '-out', pem, '-days', '10', '-subj', '/CN=site'], { stdio: 'ignore' });
    const ctx = contextFor(nodeExporterVars, inv, 'lb1', { vars: { textfile_dir: join(dir, 'out'), node_exporter_cert_dirs: [join(dir, 'etc/haproxy/certs'), join(dir, 'missing')] } });
    const script = join(dir, 'infra-cert-expiry');
    writeFileSync(script, (await render('node-exporter', ctx, nodeExporter.tasks(ctx))).get('/usr/local/sbin/infra-cert-expiry')!);
    execFileSync('sh', [script]);
    const prom = readFileSync(join(dir, 'out/cert-expiry.prom'), 'utf8');
    const end = execFileSync('openssl', ['x509', '-in', pem, '-noout', '-enddate'], { encoding: 'utf8' }).replace('notAfter=', '').trim();
    expect(prom).toContain(`x509_cert_not_after{path="${pem}"} ${Math.floor(Date.parse(end) / 1000)}\n`);
    expect(prom).not.toContain('.key"');
    const check = spawnSync(tool('promtool'), ['check', 'metrics'], { input: prom, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});

// ------------------------------------------------------------------ journal-upload

describe('journal-upload', () => {
  const withCa = (): Inventory => {
    const dir = mkdtempSync(join(work, 'inv-'));
    mkdirSync(join(dir, 'pki'));
    writeFileSync(join(dir, 'pki/ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n');
    return { ...inv, dir };
  };

  it('to the first monitoring host over HTTPS, its certificate checked against the inventory CA; retries forever', async () => {
    const ctx = contextFor(journalUploadVars, withCa(), 'api1');
    const t = journalUpload.tasks(ctx);
    const r = await render('journal-upload', ctx, t);
    const conf = r.get('/etc/systemd/journal-upload.conf.d/infra.conf')!;
    expect(conf).toMatch(/URL=https:\/\/10\.20\.0\.51:19532\nServerKeyFile=-\nServerCertificateFile=-\nTrustedCertificateFile=\/etc\/ssl\/infra-journal-upload\/ca\.pem/);
    expect(params(byModule(t, 'files.file')[0]).content).toContain('MIIBca');
    expect(r.get('/etc/systemd/system/systemd-journal-upload.service.d/infra.conf')).toMatch(/StartLimitIntervalSec=0[\s\S]*Restart=always\nRestartSec=10s/);
  });

  it('skipped with the reason on the receiving host and without a CA', () => {
    const skip = (host: string, i: Inventory) => journalUpload.tasks(contextFor(journalUploadVars, i, host)).map((t) => `${t.module.name} ${params(t).reason}`);
    expect(skip('mon1', withCa())).toEqual(['meta.skip mon1 receives the journals itself']);
    expect(skip('api1', inv)[0]).toMatch(/^meta\.skip the inventory has no internal CA .*infra pki init -i fake$/);
  });
});

// ------------------------------------------------------------------ shipped inventories and site.yaml

describe('the shipped inventories and site.yaml', () => {
  it.each(['prod', 'lab'])('%s: every host gets its node-exporter and journal-upload tasks; mon1 its monitoring tasks', async (env) => {
    const real = await loadInventory(env, { cwd: REPO, decryptor: lockedDecryptor });
    for (const name of real.hosts.keys()) {
      expect(nodeExporter.tasks(contextFor(nodeExporterVars, real, name)).length).toBeGreaterThan(3);
      expect(journalUpload.tasks(contextFor(journalUploadVars, real, name)).length).toBeGreaterThan(0);
    }
    const t = monitoring.tasks(contextFor(monitoringVars, real, 'mon1'));
    const skipped = byModule(t, 'meta.skip').map((x) => params(x).what);
    expect(skipped.includes('Loki (log store)')).toBe(env === 'lab');
  });

  it('node-exporter in the baseline play; monitoring after the service roles; the journals once their receiver exists', () => {
    const plays = parse(readFileSync(join(REPO, 'playbooks/site.yaml'), 'utf8')) as { name: string; hosts: string; roles: string[] }[];
    const at = (role: string) => plays.findIndex((p) => p.roles.includes(role));
    expect(plays[at('node-exporter')].name).toBe('baseline');
    expect(plays[at('node-exporter')].hosts).toBe('all');
    expect(at('monitoring')).toBeGreaterThan(at('haproxy-keepalived'));
    expect(at('journal-upload')).toBeGreaterThan(at('monitoring'));
    expect(plays[at('journal-upload')].hosts).toBe('all');
  });
});
