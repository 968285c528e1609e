/**
 * Issue 15 end to end, on one fleet: api1 and api2 (the role, after the baseline: hardening,
 * ca-trust) behind lb1 and lb2 (haproxy-keepalived: HTTPS on a VIP, the admin socket the
 * deploys drain through). Converge once, then ask what ROLES.md asks: node -v, pm2 jlist, the
 * unit surviving a restart, /health through nginx and through the VIP, no version in Server:,
 * nginx -t, docker info (and a container run, live-restore), the firewall openings, the vault
 * secret reaching the app. Then idempotence (0 changed, plan exit 0), then the drills: a
 * rolling deploy of version 2 while clients loop on the VIP (0 failed requests, each host
 * drained in turn), a broken version 3 that stops after the first host (left drained, the
 * second untouched), and the rollback to version 2.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startFleet, type Fleet } from '../fleet.js';
import { infra, taskResults, vaultEncrypt, REPO, type CliResult, cliWorkspace } from '../helpers/cli.js';

const SITE = join(REPO, 'test/fixtures/playbooks/api/site.yaml');
const DEPLOY = join(REPO, 'playbooks/deploy-api.yaml');
const EXAMPLE_APP = join(REPO, 'roles/api/files/app');
const SECRET = `api-secret-${randomBytes(12).toString('hex')}`;
const EOL = /Node\.js 18 reached its end of life/;
const NAME = 'api.test';

let fleet: Fleet;
let work: string;
let env: Record<string, string>;
let first: CliResult;
const apps: Record<string, string> = {};
const ip: Record<string, string> = {};
let vip: string;
const started = Date.now();

/** The example app at another version; `broken`: its /health answers 503. */
async function appVersion(version: string, broken = false): Promise<string> {
  const dir = join(work, `app-${version}`);
  await cp(EXAMPLE_APP, dir, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) {
    const p = join(dir, f);
    await writeFile(p, (await readFile(p, 'utf8')).replaceAll('"version": "1.0.0"', `"version": "${version}"`));
  }
  if (broken) {
    const p = join(dir, 'server.js');
    const text = await readFile(p, 'utf8');
    const patched = text.replace("send(res, 200, { status: 'ok', version,", "send(res, 503, { status: 'broken', version,");
    expect(patched).not.toBe(text);
    await writeFile(p, patched);
  }
  return dir;
}

const run = (cmd: 'apply' | 'plan', playbook: string, args: string[] = [], timeoutMs = 900_000) =>
  infra([cmd, playbook, '-i', fleet.inventoryDir, ...args], { env, timeoutMs });
const deploy = (app: string, extra: string[] = []) => run('apply', DEPLOY, ['--json', '-e', JSON.stringify({ api_app_src: app }), ...extra]);
const sh = async (host: string, cmd: string) => {
  const r = await fleet.exec(host, cmd);
  return r.stdout.trim();
};
const health = async (from: string, host: string) => JSON.parse(await sh(from, `curl -sS -m 5 http://${host}/health`)) as { version: string; instance: number; status: string };
/** HTTPS through the VIP, the certificate verified against the inventory's CA. */
const viaVip = (path: string) => `curl -sS -m 5 --cacert /tmp/ca.pem --resolve ${NAME}:443:${vip} https://${NAME}${path}`;
const currentRelease = (host: string) => sh(host, 'readlink /srv/api/current');
const failedTasks = (r: CliResult) => taskResults(r).filter((e) => e.status === 'failed');
const changedTasks = (r: CliResult) => taskResults(r).filter((e) => e.status === 'changed');
// Only while PM2 runs (a `pm2` command finding no daemon starts one of its own), bounded in time.
const pm2 = (host: string, args: string) => sh(host, `timeout 30 runuser -u api -- env PM2_HOME=/var/lib/api/.pm2 /usr/local/bin/pm2 ${args}`);
const online = async (host: string) => (JSON.parse(await pm2(host, 'jlist')) as { pm2_env: { status: string } }[]).filter((p) => p.pm2_env.status === 'online').length;

/** A script on a fleet host, looping in the background until `<out>.stop` exists; its lines go to `out`. */
async function startLoop(host: string, out: string, body: string): Promise<void> {
  const script = `while [ ! -e ${out}.stop ]; do\n${body}\ndone\n`;
  const r = await fleet.exec(host, `rm -f ${out}.stop; : > ${out}; echo ${Buffer.from(script).toString('base64')} | base64 -d > ${out}.sh; nohup sh ${out}.sh >> ${out} 2>/dev/null &`);
  expect(r.code).toBe(0);
}
/** HTTP status codes of requests to `url`, one per line. */
const client = (host: string, url: string, out: string) => startLoop(host, out, `curl -s -o /dev/null -m 5 -w '%{http_code}\\n' ${url}; sleep 0.05`);
/** HAProxy's view of the api servers every 0.2 s: "api1=UP api2=DRAIN". */
const sampler = () =>
  startLoop('lb1', '/tmp/states', `echo 'show stat' | socat -t 2 stdio /run/haproxy/admin.sock | awk -F, '$1=="api" && $2 ~ /^api[0-9]/ {printf "%s=%s ", $2, $18} END {print ""}'; sleep 0.2`);
async function stopLoop(host: string, out: string): Promise<string[]> {
  await fleet.exec(host, `touch ${out}.stop; sleep 1.5`);
  return (await sh(host, `cat ${out}`)).split('\n').filter(Boolean);
}
/** srv_admin_state of a server in HAProxy on each load balancer (0 ready, 8 drained by the admin socket). */
const adminState = async (server: string) =>
  Promise.all(['lb1', 'lb2'].map((lb) => sh(lb, `echo 'show servers state api' | socat stdio /run/haproxy/admin.sock | awk '$4=="${server}" {print $7}'`)));

beforeAll(async () => {
  let passwordFile: string;
  ({ work, passwordFile, env } = await cliWorkspace('api', 'api test vault'));
  apps.v2 = await appVersion('2.0.0');
  apps.v3 = await appVersion('3.0.0', true);
  const spec = {
    baseline: true, // the hardening role's packages already there (hardening.test.ts installs them)
    targets: [
      { name: 'lb1', groups: ['lb'] },
      { name: 'lb2', groups: ['lb'] },
      { name: 'api1', groups: ['api'] },
      { name: 'api2', groups: ['api'] },
    ],
    // The lab's openings name it (the exporters'); no host here: they open nothing.
    groupVars: { monitoring: {} },
  };
  fleet = await startFleet(spec).catch(() => startFleet(spec));
  for (const t of fleet.targets) ip[t.name] = t.ip;
  vip = ip.lb1.replace(/\.\d+$/, '.250');
  const lab = async (group: string) => parse(await readFile(join(REPO, 'inventories/lab/group_vars', `${group}.yaml`), 'utf8'), { logLevel: 'silent' }) as Record<string, unknown>;
  const [api, lb, all] = [await lab('api'), await lab('lb'), await lab('all')];
  const [secret, auth, pki] = [
    await vaultEncrypt('api_secret', SECRET, passwordFile),
    await vaultEncrypt('keepalived_auth_pass', 'vrrp-api', passwordFile),
    await infra(['pki', 'init', '-i', fleet.inventoryDir, '--name', 'infra api test CA'], { env }),
  ];
  expect(pki.code, pki.stderr).toBe(0);
  // The lab's group vars (openings, Docker's forwarding, the CAs to trust), this fleet's secrets and VIP.
  await writeFile(join(fleet.inventoryDir, 'group_vars/all.yaml'), stringify({ ca_trust_files: all.ca_trust_files }));
  await writeFile(join(fleet.inventoryDir, 'group_vars/api.yaml'), `${stringify({ firewall: api.firewall, sysctl_overrides: api.sysctl_overrides })}api_secret: ${secret}\n`);
  await writeFile(
    join(fleet.inventoryDir, 'group_vars/lb.yaml'),
    `${stringify({
      vip,
      firewall: lb.firewall,
      haproxy_tls: { source: 'pki', names: [NAME] },
      haproxy_health: { interval: '1s', fall: 2, rise: 1 },
      // The test's client loops from the bastion: not a flood to limit.
      haproxy_rate_limit: { exempt: ['bastion'] },
    })}keepalived_auth_pass: ${auth}\n`,
  );
  await fleet.exec('bastion', `echo ${Buffer.from(await readFile(join(fleet.inventoryDir, 'pki/ca.crt'))).toString('base64')} | base64 -d > /tmp/ca.pem`);
  // Two API servers at once, each installing Node, npm, Docker and PM2: ≈ 8 min on a slow CI machine.
  first = await run('apply', SITE, ['--json'], 1_400_000);
}, 1_500_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
  // eslint-disable-next-line no-console
  console.log(`api.test.ts: ${Math.round((Date.now() - started) / 1000)} s in all (first apply ${Math.round(first?.durationMs / 1000)} s)`);
});

describe('converged', () => {
  it('the first apply succeeds on every host, the secret in no output', () => {
    expect(failedTasks(first)).toEqual([]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout + first.stderr).not.toContain(SECRET);
  });

  it('node -v is v18 (Debian 12) and the end of life is a warning on the task', async () => {
    for (const h of ['api1', 'api2']) expect(await sh(h, 'node -v')).toMatch(/^v18\./);
    const warned = taskResults(first).filter((e) => e.warning);
    expect(warned.map((e) => e.host).sort()).toEqual(['api1', 'api2']);
    expect(warned[0].warning).toMatch(EOL);
  });

  it('pm2 jlist: one online worker per CPU, run as the app user under pm2-api.service', async () => {
    for (const h of ['api1', 'api2']) {
      const cpus = Number(await sh(h, 'nproc'));
      expect(await online(h)).toBe(cpus);
      expect(await sh(h, 'systemctl show -p User --value pm2-api')).toBe('api');
      expect(await sh(h, "ps -o user= -C node | sort -u")).toBe('api');
      expect(await sh(h, 'ps -o args= -p $(systemctl show -p MainPID --value pm2-api)')).toMatch(/pm2-runtime start \/etc\/api\/ecosystem\.config\.js/);
      expect(await sh(h, 'systemctl is-enabled pm2-api')).toBe('enabled');
    }
  });

  it('the unit survives systemctl restart: new processes, every worker back, /health answers', { timeout: 90_000 }, async () => {
    const before = await sh('api1', 'systemctl show -p MainPID --value pm2-api');
    await fleet.exec('api1', 'systemctl restart pm2-api');
    const cpus = Number(await sh('api1', 'nproc'));
    // Every worker says so in the journal once online; only then ask PM2 itself.
    const since = await sh('api1', 'systemctl show -p ActiveEnterTimestamp --value pm2-api');
    const deadline = Date.now() + 60_000;
    const onlineLines = () => sh('api1', `journalctl -u pm2-api --since '${since}' -o cat | grep -c 'App \\[api:[0-9]*\\] online'`);
    while (Number(await onlineLines()) < cpus && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    expect(await online('api1')).toBe(cpus);
    expect(await sh('api1', 'systemctl show -p MainPID --value pm2-api')).not.toBe(before);
    expect((await health('lb1', ip.api1)).status).toBe('ok');
  });

  it('/health answers through nginx on both hosts and through the VIP (HTTPS, the CA-signed certificate)', async () => {
    for (const h of ['api1', 'api2']) expect(await health('lb1', ip[h])).toMatchObject({ status: 'ok', version: '1.0.0' });
    expect(JSON.parse(await sh('bastion', viaVip('/health')))).toMatchObject({ status: 'ok', version: '1.0.0' });
    // Cluster mode: new connections to the app are spread over every worker (nginx's keep-alive
    // connections stay with one worker each, so ask the app directly).
    const ids = await sh('api1', "for i in $(seq 12); do curl -s http://127.0.0.1:3000/health; echo; done");
    const instances = new Set(ids.split('\n').map((l) => (JSON.parse(l) as { instance: number }).instance));
    expect(instances.size).toBe(Number(await sh('api1', 'nproc')));
  });

  it('nginx: Server header without a version, nginx -t, gzip and a body size limit', async () => {
    const headers = await sh('lb1', `curl -sSI http://${ip.api1}/health`);
    expect(headers).toMatch(/^Server: nginx\r?$/m);
    expect((await fleet.exec('api1', 'nginx -t 2>&1')).code).toBe(0);
    const config = await sh('api1', 'nginx -T 2>/dev/null');
    expect(config).toMatch(/^\s*server_tokens off;$/m);
    expect(config).toMatch(/^\s*gzip_types application\/json /m);
    const big = await sh('lb1', `head -c 2000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' --data-binary @- http://${ip.api1}/`);
    expect(big).toBe('413');
  });

  it('real_ip: X-Forwarded-For is believed from the load balancer only', async () => {
    await fleet.exec('lb1', `curl -s -o /dev/null -H 'X-Forwarded-For: 203.0.113.9' http://${ip.api1}/from-lb`);
    await fleet.exec('api1', `curl -s -o /dev/null -H 'X-Forwarded-For: 203.0.113.9' http://127.0.0.1/from-elsewhere`);
    const log = await sh('api1', 'grep -E "GET /from-(lb|elsewhere)" /var/log/nginx/access.log');
    expect(log).toMatch(/^203\.0\.113\.9 .*GET \/from-lb /m);
    expect(log).toMatch(/^127\.0\.0\.1 .*GET \/from-elsewhere /m);
  });

  it('the firewall opens nginx to the lb group only; the app listens on loopback only', async () => {
    const probe = async (from: string, host: string, port: number) =>
      sh(from, `timeout 4 bash -c 'echo > /dev/tcp/${host}/${port}' 2>/dev/null && echo open || echo closed`);
    expect(await probe('lb1', ip.api1, 80)).toBe('open');
    expect(await probe('bastion', ip.api1, 80)).toBe('closed');
    expect(await sh('api1', "ss -Hltn 'sport = :3000' | awk '{print $4}'")).toBe('127.0.0.1:3000');
  });

  it('the vault secret reaches the app: env file 0600 api:api, the HMAC the app signs with it', async () => {
    expect(await sh('api1', 'stat -c "%a %U:%G" /etc/api/app.env')).toBe('600 api:api');
    const { hmac } = JSON.parse(await sh('lb1', `curl -sS http://${ip.api1}/sign?msg=hello`)) as { hmac: string };
    expect(hmac).toBe(createHmac('sha256', SECRET).update('hello').digest('hex'));
  });

  it('releases are root-owned (the app cannot rewrite its code); the exporter answers on the private address', async () => {
    expect(await currentRelease('api1')).toBe('releases/1.0.0');
    expect(await sh('api1', 'stat -c %U:%a /srv/api/releases/1.0.0 /srv/api/releases/1.0.0/server.js | sort -u | tr "\\n" " "')).toBe('root:644 root:755');
    expect((await fleet.exec('api1', 'runuser -u api -- touch /srv/api/releases/1.0.0/x')).code).not.toBe(0);
    expect(await sh('api1', `curl -s http://${ip.api1}:9113/metrics | grep '^nginx_up'`)).toBe('nginx_up 1');
  });

  it('PM2 logs rotate: a forced rotation keeps PM2 writing to the new file', async () => {
    await fleet.exec('api1', 'logrotate -f /etc/logrotate.d/pm2-api');
    expect(await sh('api1', 'ls /var/log/api | sort | tr "\\n" " "')).toMatch(/out\.log-\d{8}/);
    // Workers print "listening" once reloaded: a line for the new file. A reload waits for each
    // worker in turn; on a busy CI machine that took longer than the default 30 s.
    expect((await fleet.exec('api1', 'timeout 120 systemctl reload pm2-api')).code).toBe(0);
    expect(await sh('api1', 'for i in $(seq 60); do grep -q listening /var/log/api/out.log && { echo written; exit; }; sleep 1; done; echo never')).toBe('written');
  }, 240_000);

  it('docker info answers (vfs, live-restore); the app user is not in the docker group', async () => {
    const info = await sh('api1', 'docker info --format "{{.Driver}} {{.LiveRestoreEnabled}} {{.LoggingDriver}}"');
    expect(info).toBe('vfs true json-file');
    expect((await sh('api1', 'id -nG api')).split(' ')).not.toContain('docker');
  });

  it('dockerd runs a container here, and live-restore keeps it across a dockerd restart', async () => {
    // No registry: an image from the host's own files (dash, sleep and their libraries).
    const files = '/bin/dash /bin/sleep /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2';
    expect((await fleet.exec('api1', `tar -chf - ${files} 2>/dev/null | docker import - infra-mini`)).code).toBe(0);
    expect(await sh('api1', 'docker run --rm --network none infra-mini /bin/dash -c "echo hello from a container"')).toBe('hello from a container');
    const id = await sh('api1', 'docker run -d --network none infra-mini /bin/sleep 600');
    await fleet.exec('api1', 'systemctl restart docker');
    expect(await sh('api1', `docker inspect -f '{{.State.Running}}' ${id}`)).toBe('true');
    await fleet.exec('api1', `docker rm -f ${id}; docker rmi infra-mini`);
  });
});

describe('idempotence', () => {
  it('a second apply changes nothing; plan after it exits 0 and prints the end-of-life warning once', async () => {
    const second = await run('apply', SITE, ['--json']);
    expect(failedTasks(second)).toEqual([]);
    expect(changedTasks(second).map((e) => `${e.host}: ${e.task}`)).toEqual([]);
    const plan = await run('plan', SITE, ['--detailed-exitcode']);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout.split('\n').filter((l) => EOL.test(l))).toHaveLength(1);
    expect(plan.stdout + plan.stderr).not.toContain(SECRET);
  }, 900_000);
});

describe('rolling deploys', () => {
  it('version 2 while clients loop on the VIP: 0 failed requests, each host drained in turn, every host on 2.0.0', async () => {
    await client('bastion', `--cacert /tmp/ca.pem --resolve ${NAME}:443:${vip} https://${NAME}/health`, '/tmp/via-lb');
    await client('lb1', `http://${ip.api1}/health`, '/tmp/direct');
    await sampler();
    const r = await deploy(apps.v2);
    const viaLb = await stopLoop('bastion', '/tmp/via-lb');
    const direct = await stopLoop('lb1', '/tmp/direct');
    const states = await stopLoop('lb1', '/tmp/states');
    // eslint-disable-next-line no-console
    console.log(`api.test.ts: rolling deploy of 2.0.0 took ${Math.round(r.durationMs / 1000)} s; ${viaLb.length} requests via the VIP (${viaLb.filter((c) => c !== '200').length} failed), ${direct.length} to api1's nginx (${direct.filter((c) => c !== '200').length} failed)`);
    expect(failedTasks(r)).toEqual([]);
    expect(r.code).toBe(0);
    for (const h of ['api1', 'api2']) {
      expect(await currentRelease(h)).toBe('releases/2.0.0');
      expect((await health('lb1', ip[h])).version).toBe('2.0.0');
    }
    // Clients on the VIP saw no failure; nor did one hitting api1's nginx while PM2 reloaded under it.
    expect(viaLb.length).toBeGreaterThan(20);
    expect(viaLb.filter((c) => c !== '200')).toEqual([]);
    expect(direct.length).toBeGreaterThan(20);
    expect(direct.filter((c) => c !== '200')).toEqual([]);
    // HAProxy saw api1 drained (api2 serving), then api2 drained (api1 serving), never both out.
    expect(states.some((s) => /api1=DRAIN/.test(s) && /api2=UP/.test(s))).toBe(true);
    expect(states.some((s) => /api2=DRAIN/.test(s) && /api1=UP/.test(s))).toBe(true);
    expect(states.filter((s) => !/api1=UP/.test(s) && !/api2=UP/.test(s))).toEqual([]);
    // Serial: api1 was done (drained, switched, back in rotation) before api2 started.
    const order = taskResults(r).filter((e) => e.module === 'app.release').map((e) => `${e.host} ${e.status}`);
    expect(order).toEqual(['api1 changed', 'api2 changed']);
  }, 900_000);

  it('a broken version 3 stops after the first host: api1 left drained on 3.0.0, api2 untouched on 2.0.0', async () => {
    await client('bastion', `--cacert /tmp/ca.pem --resolve ${NAME}:443:${vip} https://${NAME}/health`, '/tmp/via-lb');
    const r = await deploy(apps.v3, ['-e', JSON.stringify({ api_health_timeout_s: 10 })]);
    const viaLb = await stopLoop('bastion', '/tmp/via-lb');
    expect(r.code).not.toBe(0);
    const failed = failedTasks(r);
    expect(failed.map((e) => `${e.host} ${e.module}`)).toEqual(['api1 app.release']);
    const error = failed[0].error ?? '';
    expect(error).toMatch(/release 3\.0\.0 failed its health check: http:\/\/127\.0\.0\.1:80\/health answered HTTP 503/);
    expect(error).toMatch(/api1 is left drained on lb1, lb2 .*Roll back: apply release 2\.0\.0 again/s);
    // api2 was never started on: no task ran there, its release and process are as they were.
    expect(taskResults(r, 'api2')).toEqual([]);
    expect(await currentRelease('api2')).toBe('releases/2.0.0');
    expect(await sh('api2', 'ls /srv/api/releases')).not.toContain('3.0.0');
    // api1: on the broken release, out of rotation; the clients never saw it.
    expect(await currentRelease('api1')).toBe('releases/3.0.0');
    expect(await adminState('api1')).toEqual(['8', '8']);
    expect(await adminState('api2')).toEqual(['0', '0']);
    expect(viaLb.filter((c) => c !== '200')).toEqual([]);
    expect(JSON.parse(await sh('bastion', viaVip('/health'))).version).toBe('2.0.0');
  }, 900_000);

  it('rollback = apply version 2 again: api1 switches back (no upload) and returns to rotation; then 0 changed, plan 0', async () => {
    const r = await deploy(apps.v2);
    expect(failedTasks(r)).toEqual([]);
    expect(r.code).toBe(0);
    const release = taskResults(r, 'api1').find((e) => e.module === 'app.release')!;
    expect(release.status).toBe('changed');
    expect(release.changes.map((c) => c.what)).not.toContain('upload release 2.0.0');
    expect(release.changes).toContainEqual({ what: 'current', from: '3.0.0', to: '2.0.0' });
    expect(taskResults(r, 'api2').filter((e) => e.status === 'changed')).toEqual([]);
    expect(await currentRelease('api1')).toBe('releases/2.0.0');
    expect(await adminState('api1')).toEqual(['0', '0']);
    const again = await deploy(apps.v2);
    expect(changedTasks(again)).toEqual([]);
    const plan = await run('plan', DEPLOY, ['--detailed-exitcode', '-e', JSON.stringify({ api_app_src: apps.v2 })]);
    expect(plan.code, plan.stdout).toBe(0);
  }, 900_000);
});
