/**
 * Role haproxy-keepalived, live (issue 14, ROLES.md "haproxy-keepalived"): two load balancers
 * sharing a VIP, two API backends (a small python server until the api role exists) and a
 * monitoring host as the client. Converged once (hardening + the role, TLS key and VRRP
 * password from the vault), then asked: the VIP on one node, HTTPS through it, TLS versions
 * and the certificate, edge protection, stats and metrics, the admin socket; a bad variable
 * caught by `haproxy -c`; re-apply = 0 changed; then the drills: a backend down, haproxy down
 * on the VIP holder (the VIP moves), and a re-converge while the VIP sits on the backup.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startFleet, type Fleet } from '../fleet.js';
import { infra, taskResults, REPO, type CliResult } from '../helpers/cli.js';
import { waitFor, sleep } from '../helpers/wait.js';

const run = promisify(execFile);
const SITE = join(REPO, 'test/fixtures/playbooks/haproxy/site.yaml');
const SERVER_STATE = join(REPO, 'test/fixtures/playbooks/haproxy/server-state.yaml');
const LBS = ['lb1', 'lb2'];
const AUTH_PASS = 'vrrp-k3y';
const NAME = 'lb.test';
/** Both certificate sources live: lb1 from the inventory's internal CA, lb2 from the vault. */
const PKI_CA = 'infra fleet CA';
const VAULT_CA = 'vault test CA';
const ISSUER: Record<string, string> = { lb1: PKI_CA, lb2: VAULT_CA };
/** Low limits so the drills hit them quickly. */
const RATE_LIMIT = 30;
const CONN_LIMIT = 10;
const HTTP_REQUEST_TIMEOUT_S = 3;
const MAX_BODY = 1024 * 1024;

let fleet: Fleet;
let work: string;
let env: Record<string, string>;
let vip: string;
let keyPem: string;
let firstApply: CliResult;
const started = Date.now();

const ipOf = (name: string) => fleet.targets.find((t) => t.name === name)!.ip;
const exec = async (host: string, cmd: string) => fleet.exec(host, cmd);
const out = async (host: string, cmd: string) => (await exec(host, cmd)).stdout.trim();
const output = (r: CliResult) => r.stdout + r.stderr;

/** The load balancers holding the VIP right now. */
async function vipHolders(): Promise<string[]> {
  const held = await Promise.all(LBS.map(async (h) => ((await exec(h, `ip -4 -o addr show | grep -qF ' ${vip}/' && echo yes`)).stdout.trim() === 'yes' ? h : '')));
  return held.filter(Boolean);
}

/** An HTTPS request through the VIP from `from`, verifying the certificate against the test CA. */
async function https(from: string, path = '/', args = ''): Promise<{ code: number; body: string; headers: string }> {
  const r = await exec(from, `curl -s --max-time 5 --cacert /tmp/ca.pem --resolve ${NAME}:443:${vip} -D /tmp/h -o /tmp/b -w '%{http_code}' ${args} 'https://${NAME}${path}'; echo; cat /tmp/h; echo @@; cat /tmp/b`);
  const [code, rest] = [r.stdout.split('\n')[0], r.stdout.split('\n').slice(1).join('\n')];
  const [headers, body] = rest.split('@@\n');
  return { code: Number(code), headers: headers ?? '', body: body ?? '' };
}

/** openssl s_client to the VIP from mon1, verifying the chain and the name. */
const sClient = (opts: string) =>
  exec('mon1', `echo | timeout 10 openssl s_client -connect ${vip}:443 -servername ${NAME} -CAfile /tmp/ca.pem -verify_hostname ${NAME} -verify_return_error ${opts} 2>&1`);

const adminSocket = (lb: string, cmd: string) => out(lb, `echo '${cmd}' | socat -t 5 stdio unix-connect:/run/haproxy/admin.sock`);
/** Status of backend server api/<server> in `show stat` on one load balancer. */
async function serverStatus(lb: string, server: string): Promise<string> {
  const csv = (await adminSocket(lb, 'show stat')).split('\n');
  const cols = csv[0].replace(/^# /, '').split(',');
  const row = csv.map((l) => l.split(',')).find((f) => f[0] === 'api' && f[1] === server);
  return row ? row[cols.indexOf('status')] : 'missing';
}

async function vaultString(name: string, value: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [join(REPO, 'bin/infra'), 'vault', 'encrypt-string', '--name', name, '--stdin', '--keep-trailing-newline'], { env: { ...process.env, ...env } }, (err, stdout) =>
      err ? reject(err) : resolve(stdout.trim()),
    );
    child.stdin!.end(value);
  });
}

/** A CA and a server certificate for lb.test and the VIP, made here (what the vault would hold). */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const o = (args: string[]) => run('openssl', args, { cwd: dir });
  await o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${VAULT_CA}`]);
  await o(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'site.key', '-out', 'site.csr', '-subj', `/CN=${NAME}`]);
  await writeFile(join(dir, 'san.ext'), `subjectAltName=DNS:${NAME},IP:${vip}\nextendedKeyUsage=serverAuth\n`);
  await o(['x509', '-req', '-in', 'site.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'site.pem', '-days', '2', '-extfile', 'san.ext']);
  const read = (f: string) => readFile(join(dir, f), 'utf8');
  return { ca: await read('ca.pem'), cert: await read('site.pem'), key: await read('site.key') };
}

/** Echoes who answered and the forwarding headers it got (JSON), for any path; /health too. */
const FAKE_API = `
import json, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"server": socket.gethostname(), "path": self.path,
                           "xff": self.headers.get_all("X-Forwarded-For"), "xfp": self.headers.get("X-Forwarded-Proto")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
`;
const startApi = (host: string) => exec(host, `systemctl is-active -q fake-api || systemd-run -q --unit=fake-api python3 /opt/fake-api.py 80`);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'infra-haproxy-'));
  await writeFile(join(work, 'vault-pass'), 'haproxy test vault password\n', { mode: 0o600 });
  env = { INFRA_VAULT_PASSWORD_FILE: join(work, 'vault-pass'), XDG_STATE_HOME: join(work, 'state') };
  // baseline: the hardening role's packages already there (hardening.test.ts installs them).
  const spec = { baseline: true, targets: [...LBS.map((name) => ({ name, groups: ['lb'] })), { name: 'api1', groups: ['api'] }, { name: 'api2', groups: ['api'] }, { name: 'mon1', groups: ['monitoring'] }] };
  fleet = await startFleet(spec).catch(() => startFleet(spec));
  vip = ipOf('lb1').replace(/\.\d+$/, '.250');
  const certs = await makeCertificates(work);
  keyPem = certs.key;

  // The lab's lb openings (80/443 to anyone, stats to monitoring, VRRP between lbs): the fleet uses the lab's own.
  const labLb = parse(await readFile(join(REPO, 'inventories/lab/group_vars/lb.yaml'), 'utf8')) as { firewall: unknown };
  const [key, pass, pki] = await Promise.all([
    vaultString('haproxy_tls.key', certs.key),
    vaultString('keepalived_auth_pass', AUTH_PASS),
    infra(['pki', 'init', '-i', fleet.inventoryDir, '--name', PKI_CA], { env }),
  ]);
  expect(pki.code, pki.stderr).toBe(0);
  const pkiCa = await readFile(join(fleet.inventoryDir, 'pki/ca.crt'), 'utf8');
  await mkdir(join(fleet.inventoryDir, 'group_vars'), { recursive: true });
  await mkdir(join(fleet.inventoryDir, 'host_vars'), { recursive: true });
  const indent = (pem: string) => pem.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');
  await writeFile(join(fleet.inventoryDir, 'host_vars', 'lb1.yaml'), `haproxy_tls: { source: pki, names: [${NAME}] }\n`);
  await writeFile(join(fleet.inventoryDir, 'host_vars', 'lb2.yaml'), ['haproxy_tls:', '  source: vault', '  cert: |', indent(certs.cert), `  key: ${key}`, ''].join('\n'));
  await writeFile(
    join(fleet.inventoryDir, 'group_vars', 'lb.yaml'),
    [
      `vip: ${vip}`,
      `firewall: ${JSON.stringify(labLb.firewall)}`,
      `keepalived_auth_pass: ${pass}`,
      `haproxy_rate_limit: { requests: ${RATE_LIMIT}, period: 10s, connections: ${CONN_LIMIT} }`,
      `haproxy_timeouts: { http_request: ${HTTP_REQUEST_TIMEOUT_S}s }`,
      'haproxy_health: { interval: 1s, fall: 2, rise: 1 }',
      `haproxy_max_body_bytes: ${MAX_BODY}`,
      '',
    ].join('\n'),
  );

  // The backends: nginx's port on the api hosts, until the api role exists.
  await Promise.all(
    ['api1', 'api2'].map(async (h) => {
      await exec(h, `cat > /opt/fake-api.py <<'EOF'\n${FAKE_API}\nEOF`);
      await startApi(h);
    }),
  );
  await exec('mon1', `cat > /tmp/ca.pem <<'EOF'\n${certs.ca}${pkiCa}EOF`);

  firstApply = await infra(['apply', SITE, '-i', fleet.inventoryDir, '--json', '--verify'], { env, timeoutMs: 600_000 });
}, 900_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
  console.log(`haproxy-keepalived.test.ts: ${((Date.now() - started) / 1000).toFixed(0)} s`);
});

describe('haproxy-keepalived converged on lb1 and lb2', () => {
  it('the first apply succeeds, and neither the TLS key nor the VRRP password shows in its output', () => {
    const failed = taskResults(firstApply).filter((e) => e.status === 'failed');
    expect(failed, output(firstApply)).toEqual([]);
    expect(firstApply.code).toBe(0);
    expect(output(firstApply)).not.toContain(AUTH_PASS);
    for (const line of keyPem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) expect(output(firstApply)).not.toContain(line);
    // lb1's certificate comes from the inventory's CA: its key is made on lb1 and never travels.
    const cert = taskResults(firstApply, 'lb1').find((e) => e.module === 'tls.certificate')!;
    expect(cert.changes.map((c) => c.what)).toEqual(['generate key on the host', 'issue certificate', 'write CA certificate /etc/haproxy/certs/ca.crt']);
    console.log(`first apply (hardening + role, 2 hosts): ${(firstApply.durationMs / 1000).toFixed(1)} s`);
  });

  it('the installed configs pass haproxy -c and keepalived -t; secrets sit in files only their service reads', async () => {
    for (const lb of LBS) {
      expect((await exec(lb, 'haproxy -c -f /etc/haproxy/haproxy.cfg')).code).toBe(0);
      expect((await exec(lb, 'keepalived -t -f /etc/keepalived/keepalived.conf')).code).toBe(0);
      expect(await out(lb, 'stat -c "%a %U %G" /etc/haproxy/certs/site.pem.key /etc/keepalived/keepalived.conf')).toBe('640 root haproxy\n600 root root');
      expect(await out(lb, 'grep -c "auth_pass vrrp-k3y" /etc/keepalived/keepalived.conf')).toBe('1');
      expect(await out(lb, 'sysctl -n net.ipv4.ip_nonlocal_bind')).toBe('1');
    }
  });

  it('the VIP is on exactly one node', async () => {
    // Both start BACKUP with nopreempt: the first keepalived up wins (priority decides only a tie).
    await waitFor('the VIP on a node', async () => (await vipHolders()).length === 1);
    await sleep(3000);
    expect(await vipHolders()).toHaveLength(1);
    // haproxy listens on the VIP on both nodes (ip_nonlocal_bind): the backup is ready to take it.
    for (const lb of LBS) expect(await out(lb, `ss -Htln 'sport = :443' | grep -c ${vip}`)).toBe('1');
  });

  it('HTTPS through the VIP from another host answers 200 from both API backends, with X-Forwarded-For/-Proto and HSTS', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await https('mon1', '/hello', `-H 'X-Forwarded-For: 6.6.6.6'`);
      expect(r.code).toBe(200);
      const body = JSON.parse(r.body) as { server: string; xff: string[]; xfp: string; path: string };
      seen.add(body.server);
      // The client's own claim is dropped: the backend sees the real client, once.
      expect(body.xff).toEqual([ipOf('mon1')]);
      expect(body.xfp).toBe('https');
      expect(r.headers).toMatch(/^strict-transport-security: max-age=63072000\r?$/im);
    }
    expect([...seen].sort()).toEqual(['api1', 'api2']);
  });

  it('plain HTTP is redirected to HTTPS', async () => {
    const r = await out('mon1', `curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://${vip}/x?y=1`);
    expect(r).toBe(`301 https://${vip}/x?y=1`);
  });

  it('openssl s_client: TLS 1.3 with the CA-signed certificate of the VIP holder; TLS 1.2 accepted; TLS 1.1 refused', async () => {
    const [holder] = await vipHolders();
    const tls13 = await sClient('');
    expect(tls13.stdout).toMatch(/New, TLSv1\.3, Cipher is TLS_/);
    expect(tls13.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect(tls13.stdout).toMatch(new RegExp(`issuer=CN ?= ?${ISSUER[holder]}`));
    // Each node holds the certificate of its source: the internal CA's (key made on lb1), the vault's.
    expect(await out('lb1', 'openssl verify -CAfile /etc/haproxy/certs/ca.crt /etc/haproxy/certs/site.pem; openssl x509 -noout -ext subjectAltName -in /etc/haproxy/certs/site.pem')).toMatch(
      new RegExp(`^/etc/haproxy/certs/site.pem: OK\\n[^]*DNS:${NAME.replace('.', '\\.')}[^]*IP Address:${vip.replace(/\./g, '\\.')}`),
    );
    expect(await out('lb2', 'openssl x509 -noout -issuer -in /etc/haproxy/certs/site.pem')).toMatch(new RegExp(`CN ?= ?${VAULT_CA}$`));
    const tls12 = await sClient('-tls1_2');
    expect(tls12.stdout).toMatch(/New, TLSv1\.2, Cipher is ECDHE-/);
    const tls11 = await sClient('-tls1_1');
    expect(tls11.stdout).not.toMatch(/New, TLSv1\.1/);
  });

  it('edge protection: denied paths 403, denied methods 405, an oversized body 413, a slow request 408', async () => {
    expect((await https('mon1', '/.git/config')).code).toBe(403);
    expect((await https('mon1', '/', '-X TRACE')).code).toBe(405);
    // Refused on the headers (Expect: 100-continue): the body is never sent.
    await exec('mon1', `head -c ${2 * MAX_BODY} /dev/zero > /tmp/big; head -c ${MAX_BODY} /dev/zero > /tmp/max`);
    expect((await https('mon1', '/upload', `--http1.1 -H 'Expect: 100-continue' --data-binary @/tmp/big`)).code).toBe(413);
    expect((await https('mon1', '/upload', `--http1.1 --data-binary @/tmp/max`)).code).toBe(200);
    // Headers never finished (slowloris): answered 408 and cut at timeout http-request.
    const [status, ms] = (
      await out(
        'mon1',
        `s=$(date +%s%N); (printf 'GET / HTTP/1.1\\r\\nHost: ${NAME}\\r\\n'; sleep 5) | timeout 8 openssl s_client -quiet -connect ${vip}:443 -servername ${NAME} 2>/dev/null | { read -r l; e=$(date +%s%N); echo "$l"; echo $(( (e - s) / 1000000 )); cat >/dev/null; }`,
      )
    ).split('\n');
    expect(status).toMatch(/^HTTP\/1\.[01] 408/);
    expect(Number(ms) / 1000).toBeGreaterThanOrEqual(HTTP_REQUEST_TIMEOUT_S - 0.5);
    expect(Number(ms) / 1000).toBeLessThan(HTTP_REQUEST_TIMEOUT_S + 2);
  });

  it('stats and Prometheus metrics on the private address: monitoring reads them; others are refused', async () => {
    const lb1 = ipOf('lb1');
    const metrics = await out('mon1', `curl -s --max-time 5 http://${lb1}:8404/metrics`);
    expect(metrics).toMatch(/^haproxy_process_/m);
    expect(metrics).toMatch(/^haproxy_server_status\{proxy="api",server="api1",state="UP"\} 1$/m);
    expect(await out('mon1', `curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://${lb1}:8404/stats`)).toBe('200');
    // api1 is not in monitoring: the firewall drops it.
    expect(await out('api1', `curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://${lb1}:8404/metrics`)).toBe('000');
    // Past the firewall (the host itself), haproxy's own rule still refuses a non-monitoring source.
    expect(await out('lb1', `curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://${lb1}:8404/stats`)).toBe('403');
    // VRRP is open to the other load balancer only.
    const vrrp = await out('lb1', `nft list table inet infra_filter | grep -E 'l4proto (112|vrrp) accept'`);
    expect(vrrp).toMatch(/^ip saddr \{ [\d., ]+ \} meta l4proto (112|vrrp) accept$/);
    expect(vrrp.match(/\d+\.\d+\.\d+\.\d+/g)!.sort()).toEqual([ipOf('lb1'), ipOf('lb2')].sort());
  });

  it('the admin socket answers show stat: both servers UP on both load balancers', async () => {
    for (const lb of LBS) {
      expect(await serverStatus(lb, 'api1')).toBe('UP');
      expect(await serverStatus(lb, 'api2')).toBe('UP');
    }
  });

  it('haproxy.server drains a backend on every load balancer (idempotent), then makes it ready again', async () => {
    const drain = await infra(['apply', SERVER_STATE, '-i', fleet.inventoryDir, '-e', 'server=api1', '-e', 'state=drain', '--json'], { env });
    expect(drain.code, output(drain)).toBe(0);
    expect(drain.changed).toBe(2);
    for (const lb of LBS) expect(await serverStatus(lb, 'api1')).toBe('DRAIN');
    for (let i = 0; i < 3; i++) expect(JSON.parse((await https('mon1')).body).server).toBe('api2');
    const again = await infra(['plan', SERVER_STATE, '-i', fleet.inventoryDir, '-e', 'server=api1', '-e', 'state=drain', '--detailed-exitcode'], { env });
    expect(again.code, output(again)).toBe(0);
    // A reload (a config change, a re-apply) keeps the drained state: the patch run is not undone.
    await exec('lb1', 'systemctl reload haproxy');
    expect(await serverStatus('lb1', 'api1')).toBe('DRAIN');
    const ready = await infra(['apply', SERVER_STATE, '-i', fleet.inventoryDir, '-e', 'server=api1', '-e', 'state=ready', '--json'], { env });
    expect(ready.code, output(ready)).toBe(0);
    for (const lb of LBS) expect(await serverStatus(lb, 'api1')).toBe('UP');
    const unknown = await infra(['apply', SERVER_STATE, '-i', fleet.inventoryDir, '-e', 'server=api9', '-e', 'state=drain', '--json'], { env });
    expect(unknown.code).toBe(1);
    expect(taskResults(unknown).find((e) => e.status === 'failed')?.error).toMatch(/backend api has no server "api9" \(servers: api1, api2\)/);
  }, 120_000);

  it('a reload drops no request: traffic through the VIP while haproxy reloads twice, every answer 200', async () => {
    const [holder] = await vipHolders();
    const loop = out('api2', `for i in $(seq 1 24); do curl -sk -o /dev/null -w '%{http_code}\\n' --max-time 5 --resolve ${NAME}:443:${vip} https://${NAME}/; sleep 0.1; done`);
    await sleep(600);
    await exec(holder, 'systemctl reload haproxy');
    await sleep(600);
    await exec(holder, 'systemctl reload haproxy');
    expect((await loop).split('\n')).toEqual(Array(24).fill('200'));
  });

  it('more concurrent connections from one address than the limit: the extra ones are refused', async () => {
    // Idle connections to :80: a kept one times out reading (open), a refused one reads EOF (closed).
    const probe = `exec 3<>/dev/tcp/${vip}/80; read -t 2 -u 3 x; [ $? -gt 128 ] && echo open || echo closed`;
    const states = (await out('api2', `for i in $(seq 1 ${CONN_LIMIT + 2}); do bash -c '${probe}' & done; wait`)).split('\n').sort();
    expect(states).toEqual([...Array(2).fill('closed'), ...Array(CONN_LIMIT).fill('open')]);
  });

  it('a burst over the rate limit gets 429', async () => {
    // From api1 (a client like any other): the stick table counts per source address.
    // One curl, one kept-alive connection: the whole burst lands well inside the period.
    const urls = Array(RATE_LIMIT + 15).fill(`-o /dev/null https://${NAME}/`).join(' ');
    const codes = (await out('api1', `curl -sk --resolve ${NAME}:443:${vip} -w '%{http_code}\\n' ${urls}`)).split('\n');
    expect(codes.slice(0, RATE_LIMIT)).toEqual(Array(RATE_LIMIT).fill('200'));
    expect(codes.slice(RATE_LIMIT + 1)).toEqual(Array(14).fill('429'));
  });

  it('a config error in a variable is caught by haproxy -c: nothing installed, nothing reloaded', async () => {
    const before = await Promise.all(LBS.map((lb) => out(lb, 'sha256sum /etc/haproxy/haproxy.cfg; pgrep -d, -P "$(systemctl show -p MainPID --value haproxy)"')));
    const bad = await infra(['apply', SITE, '-i', fleet.inventoryDir, '-e', 'haproxy_tls_ciphersuites=TLS_NOT_A_SUITE', '--json'], { env });
    expect(bad.code).toBe(1);
    const failed = taskResults(bad).filter((e) => e.status === 'failed');
    expect(failed.map((e) => [e.host, e.task]).sort()).toEqual(LBS.map((lb) => [lb, 'files.template /etc/haproxy/haproxy.cfg']));
    expect(failed[0].error).toMatch(/validate failed for \/etc\/haproxy\/haproxy\.cfg \(haproxy -c -f %s\), file left unchanged/);
    expect(failed[0].error).toMatch(/unable to set TLS 1\.3 cipher suites to 'TLS_NOT_A_SUITE'/);
    expect(taskResults(bad).filter((e) => e.handler)).toEqual([]);
    const after = await Promise.all(LBS.map((lb) => out(lb, 'sha256sum /etc/haproxy/haproxy.cfg; pgrep -d, -P "$(systemctl show -p MainPID --value haproxy)"')));
    expect(after).toEqual(before);
    expect((await https('mon1')).code).toBe(200);
  }, 120_000);

  it('a second apply changes nothing; plan after it: exit 0', async () => {
    const second = await infra(['apply', SITE, '-i', fleet.inventoryDir, '--json'], { env });
    expect(second.code, output(second)).toBe(0);
    expect(taskResults(second).filter((e) => e.status === 'changed').map((e) => `${e.host}: ${e.task}`)).toEqual([]);
    const plan = await infra(['plan', SITE, '-i', fleet.inventoryDir, '--detailed-exitcode'], { env });
    expect(plan.code, output(plan)).toBe(0);
    console.log(`second apply: ${(second.durationMs / 1000).toFixed(1)} s, plan: ${(plan.durationMs / 1000).toFixed(1)} s`);
  }, 180_000);
});

describe('drills', () => {
  it('one backend stopped → DOWN in show stat on both load balancers; the VIP still answers 200', async () => {
    await exec('api2', 'systemctl stop fake-api');
    try {
      for (const lb of LBS) await waitFor(`api2 DOWN on ${lb}`, async () => (await serverStatus(lb, 'api2')).startsWith('DOWN'));
      for (let i = 0; i < 3; i++) {
        const r = await https('mon1');
        expect(r.code).toBe(200);
        expect(JSON.parse(r.body).server).toBe('api1');
      }
    } finally {
      await startApi('api2');
    }
    for (const lb of LBS) await waitFor(`api2 UP on ${lb}`, async () => (await serverStatus(lb, 'api2')) === 'UP');
  }, 60_000);

  let holder: string;
  let backup: string;
  it('haproxy stopped on the VIP holder → the VIP moves to the other node within seconds; requests still answer 200', async () => {
    [holder] = await vipHolders();
    backup = LBS.find((h) => h !== holder)!;
    const t0 = Date.now();
    await exec(holder, 'systemctl stop haproxy');
    await waitFor('the VIP on the backup', async () => (await vipHolders()).join() === backup, 30_000, 100);
    const seconds = (Date.now() - t0) / 1000;
    console.log(`VIP moved ${holder} → ${backup} in ${seconds.toFixed(1)} s after haproxy stopped`);
    expect(seconds).toBeLessThan(10);
    expect((await https('mon1')).code).toBe(200);
    // The other node's certificate (the other source) now answers, verified.
    const tls = await sClient('');
    expect(tls.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect(tls.stdout).toMatch(new RegExp(`issuer=CN ?= ?${ISSUER[backup]}`));
  }, 60_000);

  it('re-converging while the VIP sits on the backup starts haproxy and leaves the VIP where it is; then 0 changed, plan exit 0', async () => {
    const repair = await infra(['apply', SITE, '-i', fleet.inventoryDir, '--json'], { env });
    expect(repair.code, output(repair)).toBe(0);
    expect(taskResults(repair).filter((e) => e.status === 'changed').map((e) => `${e.host}: ${e.task}`)).toEqual([`${holder}: systemd.service haproxy.service started enabled`]);
    // The old holder is healthy again (check rise 2 s): nopreempt keeps the VIP on the backup.
    await waitFor(`haproxy active on ${holder}`, async () => (await out(holder, 'systemctl is-active haproxy')) === 'active');
    await sleep(4000);
    expect(await vipHolders()).toEqual([backup]);
    const again = await infra(['apply', SITE, '-i', fleet.inventoryDir, '--json'], { env });
    expect(again.code, output(again)).toBe(0);
    expect(taskResults(again).filter((e) => e.status === 'changed').map((e) => `${e.host}: ${e.task}`)).toEqual([]);
    const plan = await infra(['plan', SITE, '-i', fleet.inventoryDir, '--detailed-exitcode'], { env });
    expect(plan.code, output(plan)).toBe(0);
    expect(await vipHolders()).toEqual([backup]);
    expect((await https('mon1')).code).toBe(200);
  }, 240_000);

  it('a keepalived config change is applied by reload (SIGHUP) on both nodes: the VIP stays; an upgraded haproxy binary gets a reload, not a restart', async () => {
    const pids = await Promise.all(LBS.map((lb) => out(lb, 'systemctl show -p MainPID --value keepalived; systemctl show -p MainPID --value haproxy')));
    // A package upgrade replaces the binary under the running master.
    await exec(backup, 'cp -p /usr/sbin/haproxy /usr/sbin/haproxy.new && mv /usr/sbin/haproxy.new /usr/sbin/haproxy');
    const r = await infra(['apply', SITE, '-i', fleet.inventoryDir, '-e', '{"keepalived_check":{"interval":1,"fall":3,"rise":2}}', '--json'], { env });
    expect(r.code, output(r)).toBe(0);
    const changed = taskResults(r).filter((e) => e.status === 'changed').map((e) => `${e.host}: ${e.task}`).sort();
    expect(changed).toEqual(
      [
        `${backup}: reload haproxy onto its upgraded binary`,
        'lb1: files.template /etc/keepalived/keepalived.conf',
        'lb1: reload keepalived',
        'lb2: files.template /etc/keepalived/keepalived.conf',
        'lb2: reload keepalived',
      ].sort(),
    );
    expect(await out(backup, `readlink /proc/$(systemctl show -p MainPID --value haproxy)/exe`)).toBe('/usr/sbin/haproxy');
    await sleep(3000);
    expect(await vipHolders()).toEqual([backup]);
    // Same processes: reloaded, not restarted.
    expect(await Promise.all(LBS.map((lb) => out(lb, 'systemctl show -p MainPID --value keepalived; systemctl show -p MainPID --value haproxy')))).toEqual(pids);
    expect((await https('mon1')).code).toBe(200);
  }, 180_000);
});
