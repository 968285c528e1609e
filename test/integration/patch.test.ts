/**
 * `infra patch`, live (issue 17): two load balancers sharing a VIP (role haproxy-keepalived,
 * real HAProxy and Keepalived), two API backends (small HTTP servers with /health until the
 * api role exists), a monitoring host (the client looping on the VIP) and the bastion. A local
 * apt repository on the bastion (test/fixtures/patch/publish.sh) publishes infra-patch-demo in
 * a security suite and infra-patch-extra in an ordinary one; the patch policies are the lab
 * inventory's own (inventories/lab/group_vars).
 *
 *   1.0 installed, 1.1 published: --check lists it per host (exit 3) and changes nothing;
 *   the patch run upgrades every host in the policy's order (lb backup, lb VIP holder, api1,
 *   api2, mon1, bastion), drains the API servers one at a time, moves the VIP, restarts the
 *   upgraded service where no reboot is possible, and the client never sees a failed request;
 *   1.2, the API servers only (-l api): Ctrl-C while api1 is out of service finishes api1 and
 *   puts it back, and api2 is not started;
 *   another run holding api2's lock stops the patch run before anything changed;
 *   1.3, a bad release on api2: its post-check fails, the run stops with api2 drained and the
 *   hosts after it untouched, exit 1, and the report says so.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startFleet, type Fleet } from './fleet.js';
import { infra, INFRA_BIN, REPO, type CliResult } from './helpers/cli.js';
import type { RunEvent } from '../../src/report/events.js';
import type { PatchReport } from '../../src/patch/report.js';
import { waitFor, sleep } from './helpers/wait.js';

const LBS = ['lb1', 'lb2'];
const APIS = ['api1', 'api2'];
const HOSTS = [...LBS, ...APIS, 'mon1', 'bastion'];
const REPO_DIR = '/srv/lab-repo';
const DEMO = 'infra-patch-demo';
const EXTRA = 'infra-patch-extra';

let fleet: Fleet;
let work: string;
let env: Record<string, string>;
let vip: string;
let repoUrl: string;
const started = Date.now();

const exec = (host: string, cmd: string) => fleet.exec(host, cmd);
const out = async (host: string, cmd: string) => (await exec(host, cmd)).stdout.trim();
const output = (r: CliResult) => r.stdout + r.stderr;
const ipOf = (name: string) => (name === 'bastion' ? fleet.bastion.ip : fleet.targets.find((t) => t.name === name)!.ip);

const must = async (host: string, cmd: string): Promise<string> => (await fleet.sh(host, cmd)).trim();

const publish = (suite: string, name: string, version: string) => must('bastion', `sh /opt/publish.sh ${REPO_DIR} ${suite} ${name} ${version}`);
const versionOn = (host: string, name = DEMO) => out(host, `dpkg-query -W -f='\${Version}' ${name}`);
const versions = async () => Object.fromEntries(await Promise.all(HOSTS.map(async (h) => [h, await versionOn(h)] as const)));
/** Every installed package and its version: what --check must leave alone. */
const packageList = (host: string) => out(host, `dpkg-query -W -f='\${Package} \${Version} \${db:Status-Abbrev}\\n'`);
const demoPid = (host: string) => out(host, `systemctl show -p MainPID --value ${DEMO}`);
const adminSocket = (lb: string, cmd: string) => out(lb, `echo '${cmd}' | socat -t 5 stdio unix-connect:/run/haproxy/admin.sock`);

/** srv_admin_state of each server of backend api on a load balancer (bit 0x08: drained by us). */
async function adminStates(lb: string): Promise<Record<string, number>> {
  const lines = (await adminSocket(lb, 'show servers state api')).split('\n');
  const cols = lines.find((l) => l.startsWith('# be_id'))!.slice(2).split(' ');
  return Object.fromEntries(
    lines.filter((l) => l && !l.startsWith('#') && l.includes(' ')).map((l) => l.split(' ')).map((f) => [f[cols.indexOf('srv_name')], Number(f[cols.indexOf('srv_admin_state')])]),
  );
}

async function vipHolders(): Promise<string[]> {
  const held = await Promise.all(LBS.map(async (h) => ((await exec(h, `ip -4 -o addr show | grep -qF ' ${vip}/'`)).code === 0 ? h : '')));
  return held.filter(Boolean);
}

/** The newest report of the run (the CLI prints its paths on stderr). */
async function reportOf(r: CliResult): Promise<{ json: PatchReport; md: string }> {
  const path = /patch report: (\S+\.json)/.exec(r.stderr)?.[1];
  if (!path) throw new Error(`no report path in the output:\n${output(r)}`);
  return { json: JSON.parse(await readFile(path, 'utf8')) as PatchReport, md: await readFile(path.replace(/\.json$/, '.md'), 'utf8') };
}

const patch = (args: string[]) => infra(['patch', '-i', fleet.inventoryDir, '--json', '--report-dir', join(work, 'reports'), ...args], { env, timeoutMs: 600_000 });
const hostReport = (r: PatchReport, host: string) => r.hosts.find((h) => h.host === host)!;

/**
 * The drill's client and observer, as transient units: mon1 requests the VIP over HTTPS in a
 * loop (one line per request: time and status); lb1 logs `show servers state api` every 200 ms.
 */
async function startWatchers(tag: string): Promise<void> {
  await must('mon1', `systemd-run -q --unit=vip-client-${tag} sh -c 'while :; do c=$(curl -sk -o /dev/null -w "%{http_code}" --max-time 3 https://${vip}/); echo "$(date +%s.%N) $c"; sleep 0.05; done >/tmp/client-${tag}.log'`);
  await must('lb1', `systemd-run -q --unit=drain-log-${tag} sh -c 'while :; do echo "@ $(date +%s.%N)"; echo "show servers state api" | socat -t 2 stdio unix-connect:/run/haproxy/admin.sock; sleep 0.2; done >/tmp/states-${tag}.log'`);
  await waitFor('the client running', async () => (await out('mon1', `wc -l < /tmp/client-${tag}.log`)) !== '0');
}

async function stopWatchers(tag: string): Promise<{ requests: string[]; failed: string[]; snapshots: Record<string, number>[] }> {
  await exec('mon1', `systemctl stop vip-client-${tag}`);
  await exec('lb1', `systemctl stop drain-log-${tag}`);
  const requests = (await out('mon1', `cat /tmp/client-${tag}.log`)).split('\n').filter(Boolean);
  const snapshots: Record<string, number>[] = [];
  let cols: string[] = [];
  for (const line of (await out('lb1', `cat /tmp/states-${tag}.log`)).split('\n')) {
    if (line.startsWith('@ ')) snapshots.push({});
    else if (line.startsWith('# be_id')) cols = line.slice(2).split(' ');
    else if (line && !line.startsWith('#') && line.includes(' ') && snapshots.length && cols.length) {
      const f = line.split(' ');
      snapshots[snapshots.length - 1][f[cols.indexOf('srv_name')]] = Number(f[cols.indexOf('srv_admin_state')]);
    }
  }
  return { requests, failed: requests.filter((l) => !l.endsWith(' 200')), snapshots };
}

/**
 * A VIP move resets the TCP connections open on the old holder at that instant (the new holder
 * has no state for them): a request in flight then fails, every later one succeeds. Anywhere
 * else (API servers drained, patched, back) no request may fail.
 */
function expectNoFailureButAtVipMove(watched: Awaited<ReturnType<typeof stopWatchers>>, report: PatchReport): void {
  const at = (l: string) => Number(l.split(' ')[0]);
  const moves = report.hosts.filter((h) => /moved to/.test(h.steps.find((s) => s.step === 'take out of service')?.detail ?? '')).map((h) => Date.parse(h.outOfService!.from) / 1000);
  const near = (l: string) => moves.some((m) => at(l) >= m - 1 && at(l) <= m + 5);
  const atMove = watched.failed.filter(near);
  console.log(`VIP moves: ${moves.length}; requests failed then: ${atMove.length} of ${watched.requests.filter(near).length}`);
  expect(watched.failed.filter((l) => !near(l))).toEqual([]);
  expect(atMove.length).toBeLessThanOrEqual(moves.length);
}

const drained = (s: Record<string, number>) => Object.keys(s).filter((k) => s[k] & 0x08).sort();

/** The API backend: who answered, and /health that fails once a bad upgrade broke the host. */
const FAKE_API = `
import os, socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        broken = self.path == "/health" and os.path.exists("/run/infra-patch-demo-unhealthy")
        body = (b"broken" if broken else socket.gethostname().encode())
        self.send_response(503 if broken else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("0.0.0.0", 80), H).serve_forever()
`;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'infra-patch-'));
  await writeFile(join(work, 'vault-pass'), 'patch test vault password\n', { mode: 0o600 });
  env = { INFRA_VAULT_PASSWORD_FILE: join(work, 'vault-pass'), XDG_STATE_HOME: join(work, 'state') };
  // The lab's patch policies, as shipped.
  const lab = async (group: string) => (parse(await readFile(join(REPO, 'inventories/lab/group_vars', `${group}.yaml`), 'utf8')) as { patch: unknown }).patch;
  const spec = { targets: [...LBS.map((name) => ({ name, groups: ['lb'] })), ...APIS.map((name) => ({ name, groups: ['api'] })), { name: 'mon1', groups: ['monitoring'] }] };
  fleet = await startFleet(spec).catch(() => startFleet(spec));
  vip = ipOf('lb1').replace(/\.\d+$/, '.250');
  repoUrl = `http://${fleet.bastion.ip}:8080`;
  const groupVars: Record<string, Record<string, unknown>> = {
    // Always open: the window path runs live (a closed one is refused: test/unit/patch/cli.test.ts).
    all: { patch_windows: { drill: 'daily 00:00-24:00 UTC' }, patch: { window: 'drill' } },
    lb: {
      vip,
      haproxy_tls: { source: 'pki' },
      haproxy_health: { interval: '1s', fall: 2, rise: 1 },
      // The client on mon1 asks ~20 times a second for minutes: no rate limit for it.
      haproxy_rate_limit: { requests: 1000000, period: '10s', connections: 1000, exempt: ['monitoring'] },
      patch: await lab('lb'),
    },
    api: { patch: await lab('api') },
    monitoring: { patch: await lab('monitoring') },
    bastion: { patch: await lab('bastion') },
  };
  await mkdir(join(fleet.inventoryDir, 'group_vars'), { recursive: true });
  for (const [g, vars] of Object.entries(groupVars)) await writeFile(join(fleet.inventoryDir, 'group_vars', `${g}.yaml`), JSON.stringify(vars));

  const pki = await infra(['pki', 'init', '-i', fleet.inventoryDir, '--name', 'patch fleet CA'], { env });
  expect(pki.code, output(pki)).toBe(0);
  await Promise.all(APIS.map((h) => must(h, `cat > /opt/fake-api.py <<'EOF'\n${FAKE_API}\nEOF\nsystemd-run -q --unit=fake-api python3 /opt/fake-api.py`)));

  // The repository on the bastion, every host using it (straight, not through the test bed's apt cache).
  await must('bastion', `mkdir -p ${REPO_DIR} && cat > /opt/publish.sh <<'EOF'\n${await readFile(join(REPO, 'test/fixtures/patch/publish.sh'), 'utf8')}EOF`);
  await publish('lab-security', DEMO, '1.0');
  await publish('lab-updates', EXTRA, '1.0');
  await must('bastion', `systemd-run -q --unit=lab-repo python3 -m http.server 8080 --bind ${fleet.bastion.ip} --directory ${REPO_DIR}`);
  await waitFor('the repository answering', async () => (await exec('bastion', `curl -fsS -o /dev/null ${repoUrl}/dists/lab-security/Release`)).code === 0);
  const sources = `deb [trusted=yes] ${repoUrl} lab-security main\ndeb [trusted=yes] ${repoUrl} lab-updates main\n`;
  // The hosts see the lab repository only (the load balancers once their role is installed): a
  // scan's `apt-get update` takes a second instead of refreshing Debian's lists from the mirror.
  const useRepo = (h: string) =>
    must(
      h,
      `mv /etc/apt/sources.list /etc/apt/sources.list.drill-off && ` +
        `printf '${sources}' > /etc/apt/sources.list.d/infra-lab.list && echo 'Acquire::http::Proxy::${fleet.bastion.ip} "DIRECT";' > /etc/apt/apt.conf.d/99infra-lab && ` +
        `for i in 1 2 3 4; do apt-get update -q -o DPkg::Lock::Timeout=60 >/tmp/update.log 2>&1 && break; [ $i = 4 ] && { cat /tmp/update.log; exit 1; }; sleep 3; done && ` +
        `DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=60 ${DEMO} ${EXTRA} >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }; systemctl is-active ${DEMO}`,
    );
  // The load balancers' role and the other hosts' packages at once (apt on one host at a time).
  const [converged] = await Promise.all([
    infra(['run', 'haproxy-keepalived', '-i', fleet.inventoryDir, '-l', 'lb', '--json'], { env, timeoutMs: 600_000 }),
    ...HOSTS.filter((h) => !LBS.includes(h)).map(useRepo),
  ]);
  expect(converged.code, output(converged)).toBe(0);
  await Promise.all(LBS.map(useRepo));
  await waitFor('the VIP on one load balancer', async () => (await vipHolders()).length === 1);
  await waitFor('both API servers UP', async () => (await adminSocket('lb1', 'show stat')).split('\n').filter((l) => /^api,api\d,.*,UP,/.test(l)).length === 2);
  // Updates published: 1.1 in the security suite, 1.1 of the other package in the ordinary one.
  await publish('lab-security', DEMO, '1.1');
  await publish('lab-updates', EXTRA, '1.1');
  console.log(`patch.test.ts setup (fleet, haproxy-keepalived, repository): ${((Date.now() - started) / 1000).toFixed(0)} s`);
}, 900_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
  console.log(`patch.test.ts: ${((Date.now() - started) / 1000).toFixed(0)} s`);
});

describe('infra patch --check', () => {
  let check: CliResult;
  let before: Record<string, string>;
  let statesBefore: Record<string, number>[];

  beforeAll(async () => {
    before = Object.fromEntries(await Promise.all(HOSTS.map(async (h) => [h, await packageList(h)] as const)));
    statesBefore = await Promise.all(LBS.map(adminStates));
    check = await patch(['--check']);
  }, 300_000);

  it('lists the security update per host, installed → candidate, and the other update as not selected; exit 3', () => {
    expect(check.code, output(check)).toBe(3);
    for (const host of HOSTS) {
      const r = check.events.find((e): e is Extract<RunEvent, { type: 'task.result' }> => e.type === 'task.result' && e.host === host && e.module === 'patch.updates')!;
      expect(r.status, host).toBe('changed');
      expect(r.changes).toContainEqual({ what: `upgrade ${DEMO} (security)`, from: '1.0', to: '1.1' });
      expect(r.changes).toContainEqual({ what: `not selected ${EXTRA}`, from: '1.0', to: '1.1' });
    }
  });

  it('changes nothing: every package list and the drain state are as before', async () => {
    for (const h of HOSTS) expect(await packageList(h), h).toBe(before[h]);
    expect(await Promise.all(LBS.map(adminStates))).toEqual(statesBefore);
    for (const lb of LBS) expect((await exec(lb, 'systemctl is-active keepalived')).code, lb).toBe(0);
  });

  it('its report names the order, the pending updates and that a reboot would follow', async () => {
    const { json, md } = await reportOf(check);
    expect(json.mode).toBe('check');
    expect(json.result).toBe('pending');
    const [holder] = await vipHolders();
    expect(json.order).toEqual([LBS.find((h) => h !== holder), holder, 'api1', 'api2', 'mon1', 'bastion']);
    expect(hostReport(json, 'api1').pending.map((u) => [u.name, u.from, u.to, u.security])).toEqual([
      [DEMO, '1.0', '1.1', true],
      [EXTRA, '1.0', '1.1', false],
    ]);
    expect(md).toContain(`${DEMO} 1.0 → 1.1 (security)`);
  });
});

describe('infra patch: 1.1 rolled out', () => {
  let run: CliResult;
  let report: PatchReport;
  let watched: Awaited<ReturnType<typeof stopWatchers>>;
  let holderBefore: string;
  const pidsBefore: Record<string, string> = {};

  beforeAll(async () => {
    [holderBefore] = await vipHolders();
    for (const h of HOSTS) pidsBefore[h] = await demoPid(h);
    await startWatchers('rollout');
    run = await patch([]);
    watched = await stopWatchers('rollout');
    report = (await reportOf(run)).json;
    console.log(`patch run (6 hosts, 1.0 → 1.1): ${(run.durationMs / 1000).toFixed(1)} s; ${watched.requests.length} requests through the VIP meanwhile`);
    for (const h of report.hosts) console.log(`  ${h.host}: ${h.steps.map((s) => `${s.step} ${(s.ms / 1000).toFixed(1)} s`).join(', ')}`);
  }, 600_000);

  it('upgrades the security update on every host, not the other one; exit 0', async () => {
    expect(run.code, output(run)).toBe(0);
    expect(report.result).toBe('patched');
    for (const h of HOSTS) {
      expect(await versionOn(h), h).toBe('1.1');
      expect(await versionOn(h, EXTRA), h).toBe('1.0');
      expect(hostReport(report, h).outcome, h).toBe('patched');
      expect(hostReport(report, h).upgraded, h).toEqual([{ name: DEMO, from: '1.0', to: '1.1', security: true }]);
    }
  });

  it('patches in the policy order: the VIP backup, the VIP holder, api1, api2, mon1, the bastion last', () => {
    const other = LBS.find((h) => h !== holderBefore)!;
    expect(report.order).toEqual([other, holderBefore, 'api1', 'api2', 'mon1', 'bastion']);
    const upgradeOrder = run.events.filter((e) => e.type === 'task.start' && e.module === 'patch.upgrade').map((e) => (e as { host: string }).host);
    expect(upgradeOrder).toEqual(report.order);
  });

  it('drains the API servers one at a time, each back before the next leaves', () => {
    const [a, b] = APIS.map((h) => hostReport(report, h).outOfService!);
    expect(a.ms).toBeGreaterThan(0);
    expect(Date.parse(a.to!)).toBeLessThanOrEqual(Date.parse(b.from));
    const everDrained = new Set(watched.snapshots.flatMap(drained));
    expect([...everDrained].sort()).toEqual(APIS);
    expect(watched.snapshots.filter((s) => drained(s).length > 1)).toEqual([]);
    expect(drained(watched.snapshots[watched.snapshots.length - 1])).toEqual([]);
  });

  it('moves the VIP off each load balancer before patching it; it ends on the one patched first', async () => {
    const other = LBS.find((h) => h !== holderBefore)!;
    expect(await vipHolders()).toEqual([other]);
    expect(hostReport(report, holderBefore).steps.find((s) => s.step === 'take out of service')!.detail).toBe(`VIP ${vip} moved to ${other} (keepalived stopped)`);
    for (const lb of LBS) expect((await exec(lb, 'systemctl is-active keepalived')).code, lb).toBe(0);
  });

  it('no request through the VIP failed while API servers were drained; at most the one in flight when the VIP moved', () => {
    expect(watched.requests.length).toBeGreaterThan(50);
    expectNoFailureButAtVipMove(watched, report);
  });

  it('a container cannot reboot: "reboot required" is reported and the upgraded service restarted instead', async () => {
    for (const h of HOSTS) {
      const r = hostReport(report, h).reboot;
      expect(r.required, h).toEqual([DEMO]);
      expect(r.done, h).toBe(false);
      expect(r.restarted, h).toEqual([`${DEMO}.service`]);
      expect(await demoPid(h), h).not.toBe(pidsBefore[h]);
    }
    expect(hostReport(report, 'api1').reboot.note).toMatch(/a container cannot reboot/);
    // The bastion carries the run: never rebooted by it, whatever the policy.
    expect(hostReport(report, 'bastion').reboot.note).toMatch(/carries this run's connections/);
  });

  it('is recorded in the audit trail (mode patch) and in a Markdown report', async () => {
    const audit = (await readFile(join(work, 'state', 'infra', 'audit.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { mode: string; runId: string; exitCode: number });
    expect(audit.find((r) => r.runId === report.runId)).toMatchObject({ mode: 'patch', exitCode: 0 });
    const { md } = await reportOf(run);
    expect(md).toMatch(/^# Patch run .* — patched$/m);
    expect(md).toMatch(new RegExp(`\\| api2 \\| api \\| patched \\| ${DEMO} 1\\.0 → 1\\.1 \\(security\\) \\| reboot required`));
  });

  it('a second check finds nothing to patch (exit 0)', async () => {
    const again = await patch(['--check']);
    expect(again.code, output(again)).toBe(0);
    expect((await reportOf(again)).json.result).toBe('nothing to patch');
  }, 120_000);
});

describe('Ctrl-C during the rollout', () => {
  it('finishes the host being patched, puts it back into service, and starts no other', async () => {
    await publish('lab-security', DEMO, '1.2');
    // The API servers only (-l): the load balancers are the drain's helpers, not patched.
    const child = spawn(process.execPath, [INFRA_BIN, 'patch', '-i', fleet.inventoryDir, '-l', 'api', '--json', '--report-dir', join(work, 'reports')], { cwd: REPO, env: { ...process.env, CI: '1', ...env } });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      // Once api1 is leaving service: Ctrl-C.
      const events = stdout.split('\n').filter((l) => l.startsWith('{') && l.endsWith('}')).map((l) => JSON.parse(l) as RunEvent);
      if (!interrupted && events.some((e) => e.type === 'task.start' && e.host === 'api1' && e.module === 'patch.take-out')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number>((res) => child.on('close', (c) => res(c ?? -1)));
    expect(interrupted, stdout + stderr).toBe(true);
    expect(code, stderr).toBe(130);
    const { json } = await reportOf({ stdout, stderr } as CliResult);
    expect(json.result).toBe('interrupted');
    expect(hostReport(json, 'api1').outcome).toBe('patched');
    expect(await versionOn('api1')).toBe('1.2');
    expect(drained(await adminStates('lb1'))).toEqual([]);
    expect(json.order).toEqual(APIS);
    expect(hostReport(json, 'api2').outcome).toBe('pending');
    for (const h of ['api2', ...LBS, 'mon1', 'bastion']) expect(await versionOn(h), h).toBe('1.1');
  }, 300_000);
});

describe('the run lock', () => {
  it('a host another run holds stops the patch run before anything changed', async () => {
    const holder = infra(['exec', '-i', fleet.inventoryDir, '-l', 'api2', '--', 'sleep 8'], { env });
    await waitFor('infra exec holding api2', async () => (await exec('api2', 'pgrep -fx "sleep 8"')).code === 0);
    const r = await patch(['-l', 'api']);
    expect(r.code, output(r)).toBe(1);
    const { json } = await reportOf(r);
    expect(json.result).toBe('stopped');
    expect(json.stopped?.reason).toMatch(/^before anything changed: api2: api2 is locked by .* \(run \w+, infra exec -i .* -l api2 -- sleep 8\)/);
    expect(await versionOn('api1')).toBe('1.2');
    for (const lb of LBS) expect(drained(await adminStates(lb)), lb).toEqual([]);
    expect((await holder).code).toBe(0);
  }, 120_000);
});

describe('a failing post-check on the second API server', () => {
  let run: CliResult;
  let report: PatchReport;
  let watched: Awaited<ReturnType<typeof stopWatchers>>;

  beforeAll(async () => {
    // 1.3 is a bad release on api2: its upgrade breaks the host's /health.
    await must('api2', 'mkdir -p /etc/infra-patch-demo && touch /etc/infra-patch-demo/break-health');
    await publish('lab-security', DEMO, '1.3');
    await startWatchers('broken');
    run = await patch([]);
    watched = await stopWatchers('broken');
    report = (await reportOf(run)).json;
  }, 600_000);

  it('stops the run: exit 1, and the report says where and why', () => {
    expect(run.code, output(run)).toBe(1);
    expect(report.result).toBe('stopped');
    expect(report.stopped?.host).toBe('api2');
    expect(report.stopped?.reason).toMatch(/post-check "curl -fsS -o \/dev\/null --max-time 5 http:\/\/127\.0\.0\.1\/health" failed/);
    expect(hostReport(report, 'api2').outcome).toBe('failed');
    expect(hostReport(report, 'api2').outOfService?.to).toBeUndefined();
  });

  it('leaves api2 drained on both load balancers, upgraded; api1 back in service', async () => {
    for (const lb of LBS) {
      const s = await adminStates(lb);
      expect(s.api2 & 0x08, lb).toBe(0x08);
      expect(s.api1 & 0x08, lb).toBe(0);
    }
    expect(await versionOn('api2')).toBe('1.3');
    expect(await versionOn('api1')).toBe('1.3');
    expectNoFailureButAtVipMove(watched, report);
  });

  it('leaves the hosts after it untouched', async () => {
    for (const h of ['mon1', 'bastion']) {
      expect(hostReport(report, h).outcome, h).toBe('pending');
      expect(hostReport(report, h).steps.map((s) => s.step), h).toEqual(['pending updates']);
      expect(await versionOn(h), h).toBe('1.1');
    }
    const reports = await readdir(join(work, 'reports'));
    expect(reports.filter((f) => f.endsWith('.md')).length).toBe(reports.filter((f) => f.endsWith('.json')).length);
  });
});

describe('a repository that cannot be reached', () => {
  it('fails the scan (apt only warns and keeps its old lists): no stale "nothing to patch"', async () => {
    await must('bastion', 'systemctl stop lab-repo');
    const r = await patch(['--check', '-l', 'mon1']);
    expect(r.code, output(r)).toBe(1);
    const { json } = await reportOf(r);
    expect(json.stopped?.reason).toMatch(new RegExp(`mon1: pending updates: apt-get update failed:\\n.*${repoUrl.replace(/[.:/]/g, '\\$&')}`));
  }, 120_000);
});
