/**
 * One host's patch and the strategies around it, on a simulated fleet (fake-fleet.ts): the
 * order of the steps, what a failed post-check leaves behind, and the guards that keep two
 * members of a cluster from being out at once. The live proof is test/integration/patch.test.ts.
 */
import { describe, it, expect } from 'vitest';
import { HostRun } from '../../../src/engine/host-run.js';
import { RunControl } from '../../../src/engine/control.js';
import type { Reporter, RunEvent } from '../../../src/report/events.js';
import { policySchema, type HostPolicy, type PatchGroup } from '../../../src/patch/policy.js';
import { parseScan } from '../../../src/patch/apt.js';
import { patchHost, type PatchEnv } from '../../../src/patch/host-patch.js';
import { strategyFor } from '../../../src/patch/strategy.js';
import { parseReplicas, linked } from '../../../src/patch/redis.js';
import type { HostReport } from '../../../src/patch/report.js';
import { FakeFleet, type FakeHost } from './fake-fleet.js';

const pkg = () => ({ demo: { installed: '1.0', candidate: '1.1' } });
function fleet(over: Record<string, Partial<FakeHost>> = {}): FakeFleet {
  const hosts: Record<string, FakeHost> = {
    lb1: { groups: ['lb'], address: '10.0.0.11', vars: { vip: '10.0.0.10' }, packages: pkg() },
    lb2: { groups: ['lb'], address: '10.0.0.12', vars: { vip: '10.0.0.10' }, packages: pkg() },
    api1: { groups: ['api'], address: '10.0.0.21', packages: pkg() },
    api2: { groups: ['api'], address: '10.0.0.22', packages: pkg() },
  };
  for (const [h, o] of Object.entries(over)) hosts[h] = { ...hosts[h], ...o };
  return new FakeFleet(hosts);
}

function group(name: string, hosts: string[], patch: Record<string, unknown>): PatchGroup {
  const policy = policySchema.parse(patch);
  return { name, order: policy.order, serial: policy.serial, strategy: policy.strategy, policy, hosts };
}

function env(f: FakeFleet) {
  const events: RunEvent[] = [];
  const reporter: Reporter = { emit: (e) => events.push(e), close: async () => {} };
  const runs = new Map<string, HostRun>();
  const e: PatchEnv = {
    remote: f,
    reporter,
    control: new RunControl(),
    hostRun: (h) => runs.get(h) ?? runs.set(h, new HostRun(h, reporter)).get(h)!,
    selection: 'security',
    check: false,
    carriesRun: () => false,
  };
  return { env: e, events };
}

const report = (host: string, g: string): HostReport => ({ host, group: g, outcome: 'pending', pending: [], upgraded: [], reboot: { required: [], done: false, restarted: [] }, steps: [] });
const hostPolicy = (host: string, g: PatchGroup): HostPolicy => ({ host, group: g.name, policy: g.policy });
const scanOf = async (f: FakeFleet, host: string) => parseScan((await f.run(host, (await import('../../../src/patch/apt.js')).SCAN_COMMAND)).stdout);

describe('haproxy-drain', () => {
  const api = group('api', ['api1', 'api2'], { strategy: 'haproxy-drain', post: ['curl -f localhost/health'] });

  it('drains on every load balancer, upgrades, checks, puts back: in that order', async () => {
    const f = fleet();
    const { env: e, events } = env(f);
    const s = strategyFor(api, f);
    await s.guard(['api1']);
    const r = report('api1', 'api');
    expect(await patchHost(e, hostPolicy('api1', api), s, await scanOf(f, 'api1'), r)).toBe(true);
    expect(r.steps.map((x) => [x.step, x.ok])).toEqual([
      ['take out of service', true],
      ['upgrade security updates', true],
      ['restart upgraded services', true],
      ['health checks', true],
      ['back into service', true],
    ]);
    expect(r.outcome).toBe('patched');
    expect(r.upgraded).toEqual([{ name: 'demo', from: '1.0', to: '1.1', security: true }]);
    expect(r.outOfService?.ms).toBeGreaterThanOrEqual(0);
    for (const lb of ['lb1', 'lb2']) expect(f.admin.get(lb)!.get('api1')).toBe('ready');
    // Drained on both before the upgrade began.
    const upgradeAt = f.log.findIndex((l) => l.startsWith('api1:') && l.includes('install --only-upgrade'));
    for (const lb of ['lb1', 'lb2']) expect(f.log.findIndex((l) => l.startsWith(`${lb}:`) && l.includes('set server api/api1 state drain'))).toBeLessThan(upgradeAt);
    expect(events.filter((x) => x.type === 'task.result').map((x) => (x as { module: string }).module)).toEqual(['patch.take-out', 'patch.upgrade', 'patch.restart', 'patch.health', 'patch.put-back']);
  });

  it('a failed post-check stops the host where it is: drained, upgraded, not put back', async () => {
    const f = fleet({ api2: { postCheck: 22 } });
    const { env: e, events } = env(f);
    const r = report('api2', 'api');
    expect(await patchHost(e, hostPolicy('api2', api), strategyFor(api, f), await scanOf(f, 'api2'), r)).toBe(false);
    expect(r.outcome).toBe('failed');
    expect(r.error).toMatch(/^health checks: post-check "curl -f localhost\/health" failed \(exit 22\)/);
    expect(r.steps.map((x) => x.step)).not.toContain('back into service');
    expect(r.outOfService?.to).toBeUndefined();
    for (const lb of ['lb1', 'lb2']) expect(f.admin.get(lb)!.get('api2')).toBe('drain');
    expect(events.some((x) => x.type === 'host.failed' && x.host === 'api2')).toBe(true);
  });

  it('refuses to drain a server while another is out of service (drained or DOWN), or the last one', async () => {
    const f = fleet();
    f.admin.get('lb2')!.set('api2', 'drain');
    const s = strategyFor(api, f);
    await expect(s.guard(['api1'])).rejects.toThrow(/not draining api1 while another server is out of service \(never two down at once\):\napi2 on lb2: api\/api2 state \(drain\)/);
    const down = fleet({ api2: { healthy: false } });
    await expect(strategyFor(api, down).guard(['api1'])).rejects.toThrow(/api2 on lb1: wait until api\/api2 is UP \(DOWN\)/);
    await expect(strategyFor(api, f).guard(['api1', 'api2'])).rejects.toThrow(/would be every server of backend api/);
  });
});

describe('keepalived-vip', () => {
  const lb = group('lb', ['lb1', 'lb2'], { strategy: 'keepalived-vip' });

  it('patches the VIP holder last; taking it out moves the VIP to the peer, which keeps it', async () => {
    const f = fleet();
    f.vipOn = 'lb1';
    const s = strategyFor(lb, f);
    expect(await s.order(['lb1', 'lb2'])).toEqual(['lb2', 'lb1']);
    expect(await s.takeOut('lb2')).toBe('keepalived stopped; the VIP 10.0.0.10 stays on lb1');
    expect(await s.putBack('lb2')).toBe('keepalived started; the VIP 10.0.0.10 stays on lb1');
    await s.guard(['lb1']);
    expect(await s.takeOut('lb1')).toBe('VIP 10.0.0.10 moved to lb2 (keepalived stopped)');
    expect(f.vipOn).toBe('lb2');
  }, 20_000);

  it('refuses while the peer cannot take the VIP', async () => {
    const f = fleet({ lb2: { keepalived: false } });
    await expect(strategyFor(lb, f).guard(['lb1'])).rejects.toThrow(/keepalived or haproxy is not running on lb2: not moving the VIP off lb1/);
  });

  it('needs the vip variable (an input error before connecting)', () => {
    const f = fleet({ lb1: { vars: {} } });
    expect(() => strategyFor(lb, f).helpers()).toThrow(/lb1: strategy keepalived-vip needs the host's vip variable/);
  });
});

describe('after the upgrade, in a container', () => {
  it('reports "reboot required" and restarts instead of rebooting', async () => {
    const f = fleet({ api1: { container: 'docker', packages: { libc6: { installed: '2.36-9', candidate: '2.36-9+deb12u7' } } } });
    const g = group('all', ['api1'], {});
    const { env: e } = env(f);
    const r = report('api1', 'all');
    expect(await patchHost(e, hostPolicy('api1', g), strategyFor(g, f), await scanOf(f, 'api1'), r)).toBe(true);
    expect(r.reboot).toMatchObject({ required: ['libc6'], done: false });
    expect(r.reboot.note).toMatch(/reboot required \(libc6\): a container cannot reboot/);
    expect(r.steps.map((x) => x.step)).toEqual(['upgrade security updates', 'restart upgraded services', 'health checks']);
    expect(f.log.some((l) => l.includes('systemctl reboot'))).toBe(false);
  });
});

/** Sentinels and PostgreSQL members, simulated: who is master/primary, SENTINEL FAILOVER, psql's answer. */
class ClusterFleet extends FakeFleet {
  master = 'r1';
  primary = 'db1';
  down = new Set<string>();
  override async run(host: string, cmd: string) {
    const ok = (stdout: string, code = 0) => ({ code, stdout, stderr: code ? 'could not connect' : '', stdoutBytes: Buffer.from(stdout) });
    if (cmd.includes('redis-cli')) {
      this.log.push(`${host}: ${cmd}`);
      if (cmd.includes('get-master-addr-by-name')) return ok(`${this.address(this.master)}\n6379\n`);
      if (cmd.includes('REPLICAS')) {
        const reps = this.hosts('redis').filter((h) => h !== this.master);
        return ok(reps.map((h) => `name\n${this.address(h)}:6379\nip\n${this.address(h)}\nflags\n${this.down.has(h) ? 's_down,slave' : 'slave'}\nmaster-link-status\n${this.down.has(h) ? 'err' : 'ok'}\n`).join(''));
      }
      if (cmd.includes('FAILOVER')) {
        this.master = this.hosts('redis').find((h) => h !== this.master)!;
        return ok('OK\n');
      }
    }
    if (cmd.includes('pg_is_in_recovery')) {
      this.log.push(`${host}: psql`);
      if (this.down.has(host)) return ok('', 2);
      return ok(host === this.primary ? 'f\n' : 't\n');
    }
    return super.run(host, cmd);
  }
}

function clusterFleet(): ClusterFleet {
  return new ClusterFleet({
    r1: { groups: ['redis', 'sentinel'], address: '10.0.0.41', packages: pkg() },
    r2: { groups: ['redis', 'sentinel'], address: '10.0.0.42', packages: pkg() },
    s3: { groups: ['sentinel'], address: '10.0.0.43', packages: {} },
    db1: { groups: ['postgres'], address: '10.0.0.31', packages: pkg() },
    db2: { groups: ['postgres'], address: '10.0.0.32', packages: pkg() },
  });
}

describe('redis-sentinel', () => {
  const redis = group('redis', ['r1', 'r2'], { strategy: 'redis-sentinel' });

  it('replicas first; the master after a Sentinel failover away from it, back as a linked replica', async () => {
    const f = clusterFleet();
    const s = strategyFor(redis, f);
    expect(s.helpers()).toEqual(['s3']);
    expect(await s.order(['r1', 'r2'])).toEqual(['r2', 'r1']);
    expect(await s.takeOut('r2')).toBe('replica: no traffic to move');
    await s.guard(['r1']);
    expect(await s.takeOut('r1')).toBe('Sentinel failover: r2 is master now, r1 its replica');
    expect(f.log.filter((l) => l.includes('FAILOVER'))).toEqual([`r1: timeout 5 redis-cli -h 10.0.0.41 -p 26379 SENTINEL FAILOVER main`]);
    expect(await s.putBack('r1')).toBe('linked replica of r2');
  }, 20_000);

  it('refuses while another replica is not linked', async () => {
    const f = clusterFleet();
    f.hostsByName.r3 = { groups: ['redis'], address: '10.0.0.44', packages: {} };
    f.down.add('r3');
    await expect(strategyFor(group('redis', ['r1', 'r2', 'r3'], { strategy: 'redis-sentinel' }), f).guard(['r2'])).rejects.toThrow(/replica\(s\) r3 not linked \(Sentinel: s_down,slave\): never two members down at once/);
  });
});

describe('postgres', () => {
  const pg = group('postgres', ['db1', 'db2'], { strategy: 'postgres' });

  it('replicas first; the primary last, in an announced downtime', async () => {
    const f = clusterFleet();
    const s = strategyFor(pg, f);
    expect(await s.order(['db1', 'db2'])).toEqual(['db2', 'db1']);
    await s.guard(['db2']);
    expect(await s.takeOut('db2')).toBe('replica: no traffic to move');
    expect(await s.putBack('db2')).toBe('replica answers (in recovery)');
    await s.guard(['db1']);
    expect(await s.takeOut('db1')).toMatch(/^announced downtime: db1 is the PostgreSQL primary; writes fail until it is patched and back/);
    expect(f.announced).toHaveLength(1);
    expect(await s.putBack('db1')).toBe('primary answers again: downtime over');
  });

  it('a member that does not answer stops the run before anything (the order cannot be known)', async () => {
    const f = clusterFleet();
    f.down.add('db2');
    await expect(strategyFor(pg, f).order(['db1', 'db2'])).rejects.toThrow(/db2: pg_is_in_recovery\(\) did not answer \(exit 2: could not connect\)/);
  });
});

describe('redis-sentinel: what Sentinel says about replicas', () => {
  it('parses SENTINEL REPLICAS and tells a linked replica', () => {
    const out = 'name\n10.0.0.42:6379\nip\n10.0.0.42\nport\n6379\nflags\nslave\nmaster-link-status\nok\nname\n10.0.0.41:6379\nip\n10.0.0.41\nport\n6379\nflags\ns_down,slave\nmaster-link-status\nerr\n';
    const reps = parseReplicas(out);
    expect(reps.map((r) => [r.ip, r.flags])).toEqual([
      ['10.0.0.42', 'slave'],
      ['10.0.0.41', 's_down,slave'],
    ]);
    expect(reps.map(linked)).toEqual([true, false]);
  });
});
