/**
 * Issue 16 end to end, on one fleet: mon1 (monitoring), lb1 (haproxy-keepalived, the VIP),
 * app1 (the API backend, Redis master + Sentinel, a stand-in PostgreSQL exporter until the
 * postgres role is on main, and the webhook sink that plays pager and chat), and the bastion.
 * Converged once with site.yaml's order (hardening, node exporter everywhere, the services,
 * monitoring, the journals), short intervals from variables so the alerts are quick. Then:
 * /-/ready, every target up, the metrics of every job, the firewall openings, a log line
 * found centrally (measured), re-apply = 0 changed, plan exit 0; then the alert drills: a
 * target down reaches the chat, a host down pages and holds back (inhibits) that host's other
 * alerts, both resolve; silences survive an Alertmanager restart.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startFleet, type Fleet } from '../fleet.js';
import { infra, vaultEncrypt, REPO, type CliResult, cliWorkspace } from '../helpers/cli.js';
import { waitFor, sleep } from '../helpers/wait.js';

const PLAYBOOK = join(REPO, 'test/fixtures/playbooks/monitoring/site.yaml');
const SINK_PORT = 9099;
const HOST_DOWN_FOR_S = 4;
const TARGET_DOWN_FOR_S = 12;
const REDIS_PASSWORDS = ['redis_admin_password', 'redis_replication_password', 'redis_sentinel_password', 'redis_monitoring_password'];

let fleet: Fleet;
let work: string;
let env: Record<string, string>;
let first: CliResult;
let second: CliResult;
let vip: string;
const ip: Record<string, string> = {};
const started = Date.now();
const measured: Record<string, string> = {};

const exec = (host: string, cmd: string) => fleet.exec(host, cmd);

/** A Prometheus instant query on mon1: [labels, value] per series. */
async function query(expr: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const r = await exec('mon1', `curl -fsS --get --data-urlencode ${shq(`query=${expr}`)} http://${ip.mon1}:9090/api/v1/query`);
  if (r.code !== 0) throw new Error(`query ${expr}: ${r.stderr}`);
  const body = JSON.parse(r.stdout) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  return body.data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
}
const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Delivery {
  path: string;
  at: number;
  status: string;
  alerts: { status: string; labels: Record<string, string> }[];
}
/** What the webhook sink on app1 received (one JSON line per POST). */
async function deliveries(): Promise<Delivery[]> {
  const r = await exec('app1', 'cat /var/log/sink.jsonl 2>/dev/null');
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { path: string; at: number; body: { status: string; alerts: Delivery['alerts'] } })
    .map((d) => ({ path: d.path, at: d.at, status: d.body.status, alerts: d.body.alerts }));
}
/** Deliveries to one receiver path of one alert on one instance, with the given status. */
const received = (all: Delivery[], path: string, alertname: string, instance: string, status: 'firing' | 'resolved', since = 0) =>
  all.filter((d) => d.path === path && d.at >= since && d.alerts.some((a) => a.labels.alertname === alertname && a.labels.instance === instance && a.status === status));

/**
 * app1's stand-ins, one python3 script: the API backend (GET → 200, for HAProxy's health
 * check and the blackbox probe), exporters serving fixed metrics (PostgreSQL's and nginx's,
 * until the postgres and api roles are on main), and the webhook sink that records every POST
 * with its path.
 */
const STANDIN = `
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
mode, port = sys.argv[1], int(sys.argv[2])
METRICS = {
    "pg": b"# TYPE pg_up gauge\\npg_up 1\\n# TYPE pg_stat_archiver_archived_count counter\\npg_stat_archiver_archived_count{server=\\"standin\\"} 7\\n",
    "nginx": b"# TYPE nginx_up gauge\\nnginx_up 1\\n# TYPE nginx_connections_active gauge\\nnginx_connections_active 1\\n",
}
class H(BaseHTTPRequestHandler):
    def reply(self, body, ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(METRICS.get(mode, b"ok\\n"))
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open("/var/log/sink.jsonl", "a") as f:
            f.write(json.dumps({"path": self.path, "at": time.time(), "body": json.loads(body)}) + "\\n")
        self.reply(b"ok\\n")
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("0.0.0.0", port), H).serve_forever()
`;
const standin = (unit: string, mode: string, port: number) => `systemctl is-active -q ${unit} || systemd-run -q --unit=${unit} python3 /opt/standin.py ${mode} ${port}`;

/** The lab's firewall openings for a group (the fleet's groups open what the lab opens). */
async function labVars(group: string): Promise<Record<string, unknown>> {
  return parse(await readFile(join(REPO, 'inventories/lab/group_vars', `${group}.yaml`), 'utf8'), { logLevel: 'silent' }) as Record<string, unknown>;
}
const apply = (args: string[] = []) => infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json', ...args], { env, timeoutMs: 900_000 });

beforeAll(async () => {
  let passwordFile: string;
  ({ work, passwordFile, env } = await cliWorkspace('monitoring', 'monitoring test vault'));
  const spec = {
    baseline: true, // the hardening role's packages already there (hardening.test.ts installs them)
    targets: [
      { name: 'mon1', groups: ['monitoring'] },
      { name: 'lb1', groups: ['lb'] },
      { name: 'app1', groups: ['api', 'postgres', 'redis', 'redis_master', 'sentinel'] },
    ],
    // Groups site.yaml's roles look for, empty here.
    groupVars: { redis_replica: {}, backup: {} },
  };
  fleet = await startFleet(spec).catch(() => startFleet(spec));
  for (const t of fleet.targets) ip[t.name] = t.ip;
  ip.bastion = fleet.bastion.ip;
  vip = ip.lb1.replace(/\.\d+$/, '.250');

  const pki = await infra(['pki', 'init', '-i', fleet.inventoryDir, '--name', 'monitoring fleet CA'], { env });
  expect(pki.code, pki.stderr).toBe(0);
  const vault = (name: string, value: string) => vaultEncrypt(name, value, passwordFile);
  const [pager, chat, ...redis] = await Promise.all([
    vault('alertmanager_receivers.platform.pager.url', `http://${ip.app1}:${SINK_PORT}/pager`),
    vault('alertmanager_receivers.platform.chat.url', `http://${ip.app1}:${SINK_PORT}/chat`),
    ...REDIS_PASSWORDS.map((k) => vault(k, `${k}-${Math.random().toString(36).slice(2)}`)),
  ]);

  const lab = { all: await labVars('all'), lb: await labVars('lb'), monitoring: await labVars('monitoring'), redis: await labVars('redis'), sentinel: await labVars('sentinel') };
  const dir = join(fleet.inventoryDir, 'group_vars');
  await mkdir(dir, { recursive: true });
  const write = (group: string, vars: Record<string, unknown>, raw = '') => writeFile(join(dir, `${group}.yaml`), `${stringify(vars)}${raw}`);
  await Promise.all([
    write('all', { firewall: lab.all.firewall }),
    write('lb', { firewall: lab.lb.firewall, vip, haproxy_tls: { source: 'pki' } }),
    write('api', { firewall: { allow: [{ port: 80, from: ['lb'], comment: 'api' }, { port: 9113, from: ['monitoring'], comment: 'nginx exporter' }, { port: SINK_PORT, from: ['monitoring'], comment: 'webhook sink (pager and chat)' }] } }),
    write('postgres', { firewall: { allow: [{ port: 9187, from: ['monitoring'], comment: 'postgres exporter' }] } }),
    write('redis', { firewall: lab.redis.firewall }),
    write('sentinel', { firewall: lab.sentinel.firewall, redis_sentinel_quorum: 1 }, REDIS_PASSWORDS.map((k, i) => `${k}: ${redis[i]}\n`).join('')),
    write(
      'monitoring',
      {
        firewall: lab.monitoring.firewall,
        grafana_stack: lab.monitoring.grafana_stack,
        // Short intervals so that the drills take seconds.
        prometheus_scrape_interval: '2s',
        prometheus_evaluation_interval: '2s',
        monitoring_alerts: { host_down_for: `${HOST_DOWN_FOR_S}s`, target_down_for: `${TARGET_DOWN_FOR_S}s` },
        alertmanager_timing: { group_wait: '1s', group_interval: '2s', critical_repeat: '1h', warning_repeat: '1h', resolve_timeout: '1m' },
      },
      `alertmanager_receivers:\n  platform:\n    pager:\n      url: ${pager}\n    chat:\n      url: ${chat}\n`,
    ),
  ]);

  // app1's stand-ins run before the converge: HAProxy's health check finds its backend up.
  const script = Buffer.from(STANDIN).toString('base64');
  const up = await exec('app1', `echo ${script} | base64 -d > /opt/standin.py && ${standin('standin-api', 'api', 80)} && ${standin('standin-pg', 'pg', 9187)} && ${standin('standin-nginx', 'nginx', 9113)} && ${standin('standin-sink', 'sink', SINK_PORT)}`);
  expect(up.code, up.stderr).toBe(0);
  first = await apply();
}, 1_200_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
  const total = ((Date.now() - started) / 1000).toFixed(1);
  // Where the first apply spent its time: task seconds per play and host.
  const byPlay = new Map<string, number>();
  let play = '';
  for (const e of first?.events ?? []) {
    if (e.type === 'play.start') play = e.play;
    if (e.type !== 'task.result') continue;
    byPlay.set(`${play}@${e.host}`, (byPlay.get(`${play}@${e.host}`) ?? 0) + e.ms);
  }
  measured['first apply, slowest play@host'] = [...byPlay].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${k} ${(v / 1000).toFixed(0)} s`).join(', ');
  console.log(`monitoring.test.ts: ${total} s (first apply ${((first?.durationMs ?? 0) / 1000).toFixed(1)} s, second ${((second?.durationMs ?? 0) / 1000).toFixed(1)} s); ${Object.entries(measured).map(([k, v]) => `${k} ${v}`).join('; ')}`);
});

describe('monitoring: converge once, then ask the services', () => {
  it('the first apply converges every host; the Grafana stack is reported skipped with the reason', () => {
    const failed = first.events.filter((e) => e.type === 'task.result' && e.status === 'failed');
    expect(failed).toEqual([]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.recap.map((r) => r.host).sort()).toEqual(['app1', 'bastion', 'lb1', 'mon1']);
    const skipped = first.events.filter((e) => e.type === 'task.result' && e.host === 'mon1' && e.status === 'skipped') as { name?: string; reason?: string }[];
    expect(JSON.stringify(skipped)).toMatch(/Grafana's apt repository \(apt\.grafana\.com\) is unreachable from the lab/);
  });

  it('receiver URLs from the vault are in the 0640 root:prometheus file only, never in the output', async () => {
    const out = first.stdout + first.stderr;
    expect(out).not.toContain(`${ip.app1}:${SINK_PORT}/pager`);
    const f = await exec('mon1', 'stat -c "%a %U %G" /etc/prometheus/alertmanager.yml; grep -c /pager /etc/prometheus/alertmanager.yml');
    expect(f.stdout.split('\n').slice(0, 2)).toEqual(['640 root prometheus', '1']);
  });

  it('Prometheus and Alertmanager are ready; the installed configs pass promtool and amtool', async () => {
    const ready = await exec('mon1', `curl -fsS http://${ip.mon1}:9090/-/ready; curl -fsS http://${ip.mon1}:9093/-/ready`);
    expect(ready.code, ready.stderr).toBe(0);
    expect(ready.stdout).toMatch(/Prometheus Server is Ready/);
    const check = await exec('mon1', 'promtool check config /etc/prometheus/prometheus.yml && amtool check-config /etc/prometheus/alertmanager.yml');
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const groups = JSON.parse((await exec('mon1', `curl -fsS http://${ip.mon1}:9090/api/v1/rules`)).stdout).data.groups.map((g: { name: string }) => g.name);
    expect(groups.sort()).toEqual(['backup', 'host', 'lb', 'monitoring', 'postgres', 'redis', 'security']);
  });

  it('every scrape target is up (up == 0 is empty), one per host and exporter', { timeout: 90_000 }, async () => {
    const t0 = Date.now();
    let last: string[] = [];
    const targets = await waitFor('every target up', async () => {
      const all = await query('up');
      last = all.map((s) => `${s.metric.job} ${s.metric.instance}=${s.value}`);
      return all.length === 13 && all.every((s) => s.value === 1) ? all : undefined;
    }, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; up: ${last.join(', ')}`);
    });
    measured['all targets up after the apply'] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    expect(await query('up == 0')).toEqual([]);
    expect(targets.map((s) => `${s.metric.job} ${s.metric.instance}`).sort()).toEqual(
      [
        'alertmanager mon1',
        `blackbox_https https://${vip}/health`,
        `blackbox_icmp ${vip}`,
        'haproxy lb1',
        'node app1',
        'node bastion',
        'node lb1',
        'node mon1',
        'nginx app1',
        'postgres app1',
        'prometheus mon1',
        'redis app1',
        'sentinel app1',
      ].sort(),
    );
  });

  it('node metrics from every host; pg_up, redis_up, HAProxy, the Sentinel quorum and the VIP probes', { timeout: 60_000 }, async () => {
    const per = async (expr: string) => (await query(expr)).map((s) => `${s.metric.instance}=${s.value}`).sort();
    expect(await per('count by (instance) (node_uname_info)')).toEqual(['app1=1', 'bastion=1', 'lb1=1', 'mon1=1']);
    expect(await per('pg_up')).toEqual(['app1=1']);
    expect(await per('nginx_up')).toEqual(['app1=1']);
    expect(await per('redis_up{job="redis"}')).toEqual(['app1=1']);
    expect(await per('redis_up{job="sentinel"}')).toEqual(['app1=1']);
    expect(await per('redis_sentinel_master_ckquorum_status')).toEqual(['app1=1']);
    expect(await per('haproxy_backend_active_servers{proxy="api"}')).toEqual(['lb1=1']);
    expect(await per('probe_success')).toEqual([`${vip}=1`, `https://${vip}/health=1`].sort());
    // The VIP's certificate, as the probe saw it: from the internal CA, months away.
    const expiry = (await query('probe_ssl_earliest_cert_expiry - time()'))[0].value;
    expect(expiry).toBeGreaterThan(300 * 86400);
    // Textfile metrics: the hourly certificate scan (started here rather than waited for: the
    // baseline play ran it before the load balancer's certificate existed) finds it.
    const scan = await exec('lb1', 'systemctl start infra-cert-expiry.service');
    expect(scan.code, scan.stderr).toBe(0);
    const cert = await waitFor('x509_cert_not_after of lb1', async () => (await query('x509_cert_not_after{instance="lb1", path="/etc/haproxy/certs/site.pem"}'))[0], 20_000);
    expect(cert.value - Date.now() / 1000).toBeGreaterThan(300 * 86400);
    expect((await query('node_systemd_unit_state{instance="app1", name="prometheus-node-exporter.service", state="active"}'))[0].value).toBe(1);
  });

  it('firewall: node exporter from mon1 only, the Prometheus UI from the bastion only, journal upload from the hosts', async () => {
    const tcp = (from: string, host: string, port: number) => exec(from, `nc -z -w 2 ${host} ${port} && echo open || echo closed`).then((r) => r.stdout.trim());
    expect(await tcp('mon1', ip.app1, 9100)).toBe('open');
    expect(await tcp('lb1', ip.app1, 9100)).toBe('closed');
    expect(await tcp('bastion', ip.mon1, 9090)).toBe('open');
    expect(await tcp('app1', ip.mon1, 9090)).toBe('closed');
    expect(await tcp('app1', ip.mon1, 19532)).toBe('open');
    // Exporters listen on the private address only.
    expect((await exec('app1', 'ss -Htln "sport = :9100"')).stdout).toContain(`${ip.app1}:9100`);
    expect((await exec('mon1', 'ss -Htln "sport = :9115"')).stdout).toContain('127.0.0.1:9115');
  });

  it('a line written with logger on app1 (and on the bastion) is found on mon1 within seconds', { timeout: 60_000 }, async () => {
    const token = `infra-monitoring-${Date.now()}`;
    const t0 = Date.now();
    await Promise.all([exec('app1', `logger -t infra-test ${token}-app1`), exec('bastion', `logger -t infra-test ${token}-bastion`)]);
    const found = await waitFor('the lines in /var/log/journal/remote', async () => {
      const r = await exec('mon1', `journalctl -D /var/log/journal/remote -t infra-test -o json --no-pager | grep ${token}`);
      const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { MESSAGE: string; _HOSTNAME: string });
      return lines.length === 2 ? lines : undefined;
    }, 30_000, 200);
    measured['log line on mon1 after'] = `${((Date.now() - t0) / 1000).toFixed(2)} s`;
    expect(found.map((l) => `${l._HOSTNAME} ${l.MESSAGE}`).sort()).toEqual([`app1 ${token}-app1`, `bastion ${token}-bastion`]);
    // Over HTTPS, the upload verifying mon1's certificate against the inventory's CA.
    const conf = await exec('app1', 'cat /etc/systemd/journal-upload.conf.d/infra.conf');
    expect(conf.stdout).toContain(`URL=https://${ip.mon1}:19532`);
  });

  it('re-apply: 0 changed; plan --detailed-exitcode: 0', { timeout: 900_000 }, async () => {
    second = await apply();
    expect(second.code, second.stderr).toBe(0);
    const changed = second.events.filter((e) => e.type === 'task.result' && e.status === 'changed');
    expect(changed).toEqual([]);
    expect(second.changed).toBe(0);
    const plan = await infra(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--detailed-exitcode'], { env, timeoutMs: 600_000 });
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
  });
});

describe('alert drills (after the idempotence checks)', () => {
  it('a target down: TargetDown reaches the chat (warning), not the pager; it resolves when the target is back', { timeout: 150_000 }, async () => {
    const t0 = Date.now() / 1000;
    await exec('app1', 'systemctl stop standin-pg');
    const firing = await waitFor('TargetDown in the chat', async () => received(await deliveries(), '/chat', 'TargetDown', 'app1', 'firing', t0)[0], 60_000);
    measured['TargetDown delivered after'] = `${(firing.at - t0).toFixed(1)} s (for: ${TARGET_DOWN_FOR_S}s)`;
    expect(firing.alerts.find((a) => a.labels.alertname === 'TargetDown')!.labels).toMatchObject({ job: 'postgres', severity: 'warning', team: 'platform' });
    expect(received(await deliveries(), '/pager', 'TargetDown', 'app1', 'firing', t0)).toEqual([]);
    await exec('app1', standin('standin-pg', 'pg', 9187));
    await waitFor('TargetDown resolved in the chat', async () => received(await deliveries(), '/chat', 'TargetDown', 'app1', 'resolved', t0)[0], 60_000);
  });

  it('a host down: HostDown pages; its TargetDown fires but is inhibited and never delivered; both resolve', { timeout: 240_000 }, async () => {
    const t0 = Date.now() / 1000;
    await exec('app1', 'systemctl stop prometheus-node-exporter standin-pg');
    const paged = await waitFor('HostDown on the pager', async () => received(await deliveries(), '/pager', 'HostDown', 'app1', 'firing', t0)[0], 60_000);
    measured['HostDown delivered after'] = `${(paged.at - t0).toFixed(1)} s (for: ${HOST_DOWN_FOR_S}s)`;
    // The host's other alert: active in Alertmanager, held back by HostDown.
    const inhibited = await waitFor('TargetDown inhibited in Alertmanager', async () => {
      const r = await exec('mon1', `amtool --alertmanager.url=http://${ip.mon1}:9093 alert query -o json --inhibited alertname=TargetDown instance=app1`);
      const alerts = JSON.parse(r.stdout || '[]') as { status: { inhibitedBy: string[] } }[];
      return alerts.find((a) => a.status.inhibitedBy.length > 0);
    }, 60_000);
    expect(inhibited.status.inhibitedBy.length).toBe(1);
    // Several group intervals later, the chat still has not received it.
    await sleep(6_000);
    expect(received(await deliveries(), '/chat', 'TargetDown', 'app1', 'firing', t0)).toEqual([]);
    await exec('app1', `systemctl start prometheus-node-exporter && ${standin('standin-pg', 'pg', 9187)}`);
    await waitFor('HostDown resolved on the pager', async () => received(await deliveries(), '/pager', 'HostDown', 'app1', 'resolved', t0)[0], 60_000);
    let down: string[] = [];
    await waitFor('every target up again', async () => {
      down = (await query('up == 0')).map((s) => `${s.metric.job} ${s.metric.instance}`);
      return down.length === 0 ? true : undefined;
    }, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; down: ${down.join(', ')}`);
    });
  });

  it('a silence survives an Alertmanager restart (its data directory persists)', { timeout: 60_000 }, async () => {
    const am = `amtool --alertmanager.url=http://${ip.mon1}:9093`;
    const add = await exec('mon1', `${am} silence add alertname=RebootRequired instance=app1 --duration=2h --author=test --comment='patch window'`);
    expect(add.code, add.stderr).toBe(0);
    const id = add.stdout.trim();
    await exec('mon1', 'systemctl restart prometheus-alertmanager');
    const after = await waitFor('the silence after the restart', async () => {
      const r = await exec('mon1', `${am} silence query -o json`);
      return r.code === 0 ? (JSON.parse(r.stdout) as { id: string; status: { state: string } }[]) : undefined;
    }, 30_000);
    expect(after.find((s) => s.id === id)?.status.state).toBe('active');
  });

  it('the monitoring host away for a while: the uploads keep retrying (Debian would give up) and what was written meanwhile arrives', { timeout: 150_000 }, async () => {
    await exec('mon1', 'systemctl stop systemd-journal-remote.socket systemd-journal-remote.service');
    const token = `infra-monitoring-away-${Date.now()}`;
    await exec('app1', `logger -t infra-test ${token}`);
    // Longer than Debian's unit tries (five quick restarts, then failed for good).
    await sleep(25_000);
    expect((await exec('app1', 'systemctl is-failed systemd-journal-upload')).stdout.trim()).not.toBe('failed');
    expect(Number((await exec('app1', 'systemctl show -p NRestarts --value systemd-journal-upload')).stdout.trim())).toBeGreaterThan(0);
    const t0 = Date.now();
    await exec('mon1', 'systemctl start systemd-journal-remote.socket');
    await waitFor('the line written while mon1 was away', async () => {
      const r = await exec('mon1', `journalctl -D /var/log/journal/remote -t infra-test --no-pager | grep -c ${token}`);
      return r.stdout.trim() === '1' ? true : undefined;
    }, 60_000);
    measured['backlog on mon1 after its return'] = `${((Date.now() - t0) / 1000).toFixed(1)} s (RestartSec=10s)`;
  });
});
