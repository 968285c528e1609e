/**
 * The engine end to end, through the real CLI and the real SSH transport: a fleet of Debian
 * 12 containers behind a bastion. apply → re-apply (0 changed) → plan (0 pending), drift
 * refusal for a saved plan, ad-hoc exec and facts, bad input rejected before connecting,
 * and an unreachable host while the others finish.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFile, mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startFleet, type Fleet } from './fleet.js';
import { spawn } from 'node:child_process';
import { infra, taskResults, REPO, INFRA_BIN } from './helpers/cli.js';

const SLOW = join(REPO, 'test/fixtures/playbooks/engine/slow.yaml');

/** Starts the CLI and resolves once a line of its stdout matches. */
function startInfra(args: string[], until: RegExp) {
  const child = spawn(process.execPath, [INFRA_BIN, ...args], { cwd: REPO, env: { ...process.env, CI: '1' } });
  let out = '';
  const exited = new Promise<number>((res) => child.on('close', (code, signal) => res(code ?? (signal ? 128 : 1))));
  const seen = new Promise<void>((res, rej) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (until.test(out)) res();
    });
    void exited.then(() => rej(new Error(`exited before ${until}: ${out}`)));
  });
  return { child, seen, exited, output: () => out };
}

const PLAYBOOK = join(REPO, 'test/fixtures/playbooks/engine/site.yaml');
let fleet: Fleet;

beforeAll(async () => {
  fleet = await startFleet({ targets: 2, groupVars: { targets: { greeting: 'hello' } } });
}, 120_000);
afterAll(async () => {
  await fleet?.down();
});

describe('engine through the bastion', () => {
  it('applies a playbook, then re-applies with 0 changed, then plans 0 changes', async () => {
    const first = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json', '--verify']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.recap.map((r) => r.host).sort()).toEqual(['target1', 'target2']);
    expect(first.changed).toBeGreaterThanOrEqual(12);
    for (const t of fleet.targets) {
      expect((await fleet.exec(t.name, 'cat /opt/infra-test/motd')).stdout).toBe(`hello from ${t.name}\n`);
      const conf = (await fleet.exec(t.name, 'cat /opt/infra-test/app.conf')).stdout;
      expect(conf).toContain('greeting = hello');
      expect(conf).toContain('peers = target1,target2');
      expect(conf).toMatch(/Debian GNU\/Linux 12/);
      expect((await fleet.exec(t.name, 'cat /opt/infra-test/handler.log')).stdout).toBe('ran\n');
      expect((await fleet.exec(t.name, 'stat -c %a /opt/infra-test/app.conf')).stdout.trim()).toBe('640');
    }
    // One session per host whatever the task count: one SSH connection, and two channels —
    // the forwarded one on the bastion's connection and the session shell itself.
    for (const r of first.recap) {
      expect(r.counters).toMatchObject({ connections: 1, channels: 2 });
      expect(r.counters!.commands).toBeGreaterThan(6);
    }

    const second = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json']);
    expect(second.code).toBe(0);
    expect(second.changed).toBe(0);
    for (const t of fleet.targets) {
      // The handler was not notified again.
      expect((await fleet.exec(t.name, 'cat /opt/infra-test/handler.log')).stdout).toBe('ran\n');
    }

    const plan = await infra(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--json', '--detailed-exitcode']);
    expect(plan.code).toBe(0);
    expect(plan.changed).toBe(0);
  }, 240_000);

  it('check mode shows a diff and changes nothing; --detailed-exitcode says 3', async () => {
    const r = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--check', '--diff', '--json', '--detailed-exitcode', '-e', 'greeting=bonjour']);
    expect(r.code).toBe(3);
    const motd = taskResults(r, 'target1').find((e) => e.task.endsWith('/motd'))!;
    expect(motd.status).toBe('changed');
    expect(motd.diff?.[0]).toMatchObject({ kind: 'file', before: 'hello from target1\n', after: 'bonjour from target1\n' });
    expect((await fleet.exec('target1', 'cat /opt/infra-test/motd')).stdout).toBe('hello from target1\n');
  }, 120_000);

  it('apply plan.json applies what was planned, and refuses a host that drifted since', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'infra-plan-'));
    const planFile = join(dir, 'plan.json');
    const plan = await infra(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--out', planFile, '--json', '-e', 'greeting=hi']);
    expect(plan.code).toBe(0);
    const saved = JSON.parse(await readFile(planFile, 'utf8'));
    expect(Object.keys(saved.hosts).sort()).toEqual(['target1', 'target2']);
    // Someone edits target2 by hand after the plan.
    await fleet.exec('target2', 'echo manual > /opt/infra-test/motd');
    const r = await infra(['apply', planFile, '--json']);
    expect(r.code).toBe(1);
    const failed = r.events.find((e) => e.type === 'host.failed' && e.host === 'target2');
    expect(failed).toMatchObject({ error: expect.stringContaining('drifted since plan: files.file /opt/infra-test/motd') });
    expect((await fleet.exec('target1', 'cat /opt/infra-test/motd')).stdout).toBe('hi from target1\n');
    expect((await fleet.exec('target2', 'cat /opt/infra-test/motd')).stdout).toBe('manual\n');
  }, 180_000);

  it('a second apply on a locked host fails fast, naming the holder; the lock goes with the holder', async () => {
    await fleet.exec('target1', 'rm -f /opt/infra-slow-1 /opt/infra-slow-2 /opt/infra-slow-handler');
    const holder = startInfra(['apply', SLOW, '-i', fleet.inventoryDir, '-l', 'target1', '--json'], /"task.start".*sleep 4/);
    await holder.seen;
    const second = await infra(['apply', SLOW, '-i', fleet.inventoryDir, '-l', 'target1', '--json']);
    expect(second.code).toBe(1);
    const failed = second.events.find((e) => e.type === 'host.failed');
    expect(failed).toMatchObject({ host: 'target1', error: expect.stringMatching(/^target1 is locked by \S+@\S+ since \d\d:\d\d:\d\d \(run [0-9a-f]+, infra apply /) });
    expect(second.durationMs).toBeLessThan(15_000);
    // The controller dies mid-run: the lock goes with its session, once the command that was
    // running on the host (sleep 4) has ended — until then the host is still busy.
    holder.child.kill('SIGKILL');
    await holder.exited;
    const third = await infra(['apply', SLOW, '-i', fleet.inventoryDir, '-l', 'target1', '--json', '--lock-wait', '30s']);
    expect(third.stderr).toBe('');
    expect(third.code).toBe(0);
  }, 120_000);

  it('Ctrl-C once: running task and pending handlers finish, nothing new starts, recap, exit 130', async () => {
    await fleet.exec('target2', 'rm -f /opt/infra-slow-1 /opt/infra-slow-2 /opt/infra-slow-handler');
    const run = startInfra(['apply', SLOW, '-i', fleet.inventoryDir, '-l', 'target2', '--json'], /"task.start".*sleep 4/);
    await run.seen;
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(run.output()).toMatch(/"type":"run.end"/);
    const files = (await fleet.exec('target2', 'ls /opt | grep infra-slow || true')).stdout.split('\n').filter(Boolean);
    expect(files.sort()).toEqual(['infra-slow-1', 'infra-slow-handler']);
  }, 120_000);

  it('exec runs an ad-hoc command on every host, output per host', async () => {
    const r = await infra(['exec', '-i', fleet.inventoryDir, '-l', 'targets', '--json', '--', 'id -un; hostname']);
    expect(r.code).toBe(0);
    const outs = r.events.filter((e) => e.type === 'exec.output');
    expect(outs).toHaveLength(2);
    for (const o of outs) expect(o).toMatchObject({ code: 0, stdout: expect.stringMatching(/^root\n/) });
  }, 60_000);

  it('facts prints every host', async () => {
    const r = await infra(['facts', '-i', fleet.inventoryDir, '--json']);
    expect(r.code).toBe(0);
    const facts = JSON.parse(r.stdout);
    expect(facts.target1.os).toMatchObject({ id: 'debian', versionId: '12', codename: 'bookworm' });
    expect(facts.bastion.uid).toBe(0);
  }, 60_000);

  it('a bad inventory fails with exit 2 and file:line before any connection', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'infra-bad-'));
    // The address is unroutable: any connection attempt would hang, not fail fast.
    await writeFile(join(dir, 'hosts.yaml'), 'hosts:\n  web1:\n    adress: 192.0.2.1\n    port: twenty\n');
    const r = await infra(['apply', PLAYBOOK, '-i', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${join(dir, 'hosts.yaml')}:3:5`);
    expect(r.stderr).toContain('did you mean "address"?');
    expect(r.durationMs).toBeLessThan(10_000);
  }, 30_000);

  it('a host that is down is unreachable; the others finish', async () => {
    const solo = await startFleet({ targets: 2, groupVars: { targets: { greeting: 'hello' } } });
    try {
      await solo.stop('target2');
      const r = await infra(['apply', PLAYBOOK, '-i', solo.inventoryDir, '--json']);
      expect(r.code).toBe(1);
      expect(r.recap.find((h) => h.host === 'target2')).toMatchObject({ unreachable: true });
      expect(r.recap.find((h) => h.host === 'target1')).toMatchObject({ unreachable: false, failed: 0 });
      expect(r.recap.find((h) => h.host === 'target1')!.changed).toBeGreaterThan(0);
    } finally {
      await solo.down();
    }
  }, 180_000);
});
