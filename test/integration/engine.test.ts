/**
 * The engine end to end, through the real CLI and the real SSH transport: a fleet of Debian
 * 12 containers behind a bastion. apply → re-apply (0 changed) → plan (0 pending), drift
 * refusal for a saved plan (a changed vault value included), ad-hoc exec and facts, bad input
 * rejected before connecting, an unreachable host while the others finish, Ctrl-C once and
 * twice, a bug that escapes, handlers that fail, and a frozen host.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFile, mkdtemp, readFile, mkdir, symlink, rm } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { startFleet, type Fleet } from './fleet.js';
import { spawn } from 'node:child_process';
import { infra, taskResults, vaultEncrypt, REPO, INFRA_BIN } from './helpers/cli.js';
import { docker } from '../../src/lab/docker.js';

const SLOW = join(REPO, 'test/fixtures/playbooks/engine/slow.yaml');

/** Starts the CLI and resolves once a line of its stdout matches. */
function startInfra(args: string[], until: RegExp, opts: { cwd?: string } = {}) {
  const child = spawn(process.execPath, [INFRA_BIN, ...args], { cwd: opts.cwd ?? REPO, env: { ...process.env, CI: '1' } });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number>((res) => child.on('close', (code, signal) => res(code ?? (signal ? 128 : 1))));
  const seen = new Promise<void>((res, rej) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (until.test(out)) res();
    });
    void exited.then(() => rej(new Error(`exited before ${until}: ${out}`)));
  });
  return { child, seen, exited, output: () => out, stderr: () => err };
}

const FIXTURES = join(REPO, 'test/fixtures/playbooks/engine');
const PLAYBOOK = join(FIXTURES, 'site.yaml');
let fleet: Fleet;
/** Vault password, audit trail (XDG_STATE_HOME) and plan files of this test file. */
let work: string;
let passwordFile: string;

/** (Re)writes the targets' group vars with a vaulted `engine_secret`. */
async function writeGroupVars(secret: string): Promise<void> {
  const vaulted = await vaultEncrypt('engine_secret', secret, passwordFile);
  await writeFile(join(fleet.inventoryDir, 'group_vars', 'targets.yaml'), `greeting: hello\nengine_secret: ${vaulted}\n`);
}

/** The local audit records of this test file, oldest first. */
async function localAudit(): Promise<Record<string, any>[]> {
  const text = await readFile(join(work, 'state', 'infra', 'audit.jsonl'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** The host's audit records, oldest first. */
async function hostAudit(host: string): Promise<Record<string, any>[]> {
  const text = (await fleet.exec(host, 'cat /var/log/infra/audit.jsonl 2>/dev/null || true')).stdout;
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** What still runs on the host and whether its run lock is free. */
async function leftovers(host: string, pattern: string): Promise<{ procs: string; lock: string }> {
  const procs = (await fleet.exec(host, `pgrep -af ${JSON.stringify(pattern)} | grep -v pgrep || true`)).stdout.trim();
  const lock = (await fleet.exec(host, 'flock -n /run/infra/lock true && echo free || echo held')).stdout.trim();
  return { procs, lock };
}

/**
 * leftovers() once the host had its moment: the controller exits right after it TERMs the
 * session (it does not wait for the host to confirm), so the kill may land a little later.
 */
async function leftoversAfterKill(host: string, pattern: string): Promise<{ procs: string; lock: string }> {
  const until = Date.now() + 5000;
  for (;;) {
    const l = await leftovers(host, pattern);
    if ((l.procs === '' && l.lock === 'free') || Date.now() > until) return l;
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'infra-engine-'));
  passwordFile = join(work, 'vault-pass');
  await writeFile(passwordFile, 'engine test vault password\n', { mode: 0o600 });
  // Every CLI this file starts inherits these: the vault, and an audit trail of its own.
  process.env.INFRA_VAULT_PASSWORD_FILE = passwordFile;
  process.env.XDG_STATE_HOME = join(work, 'state');
  fleet = await startFleet({ targets: 2, groupVars: { targets: { greeting: 'hello' } } });
  await writeGroupVars('first-secret-value-1');
}, 120_000);
afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
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
      // The CLI hangs up at its end without waiting for the hosts: each session shell still
      // goes on its EOF, with its lock and its temp dir.
      expect(await leftoversAfterKill(t.name, '__INFRA_READY__')).toEqual({ procs: '', lock: 'free' });
      expect((await fleet.exec(t.name, 'ls -d /tmp/infra-session.* 2>/dev/null || true')).stdout).toBe('');
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
    // Refused before any task: counted as failed, with the reason, not a row of zeros.
    expect(second.recap).toEqual([expect.objectContaining({ host: 'target1', failed: 1, unreachable: false, error: failed!.error })]);
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

  it('the output\'s reader goes away (a caller\'s timeout, `| head`): the run stops as on Ctrl-C once and exits 130, never 0', async () => {
    await fleet.exec('target2', 'rm -f /opt/infra-slow-1 /opt/infra-slow-2 /opt/infra-slow-handler');
    const run = startInfra(['apply', SLOW, '-i', fleet.inventoryDir, '-l', 'target2', '--json'], /"task.start".*sleep 4/);
    await run.seen;
    run.child.stdout.destroy();
    run.child.stderr.destroy();
    expect(await run.exited).toBe(130);
    const files = (await fleet.exec('target2', 'ls /opt | grep infra-slow || true')).stdout.split('\n').filter(Boolean);
    expect(files.sort()).toEqual(['infra-slow-1', 'infra-slow-handler']);
    // Recorded, though nobody reads the output any more.
    const { runId } = JSON.parse(run.output().split('\n')[0]);
    expect((await localAudit()).at(-1)).toMatchObject({ runId, result: 'interrupted', exitCode: 130 });
  }, 120_000);

  it('exec runs an ad-hoc command on every host, output per host', async () => {
    const r = await infra(['exec', '-i', fleet.inventoryDir, '-l', 'targets', '--json', '--', 'id -un; hostname']);
    expect(r.code).toBe(0);
    const outs = r.events.filter((e) => e.type === 'exec.output');
    expect(outs).toHaveLength(2);
    for (const o of outs) expect(o).toMatchObject({ code: 0, stdout: expect.stringMatching(/^root\n/) });
    const plain = await infra(['exec', '-i', fleet.inventoryDir, '-l', 'target2', '--', 'true']);
    expect(plain.code).toBe(0);
    expect(plain.stdout.split('\n')[0]).toMatch(/^infra exec -i \S+ -l target2 -- true — exec — 1 host of \S+ — run [0-9a-f]{8}$/);
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

describe('engine under faults', () => {
  it('files.template with task vars keeps groups and the host vars', async () => {
    const r = await infra(['apply', join(FIXTURES, 'template-vars.yaml'), '-i', fleet.inventoryDir, '-l', 'target1', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await fleet.exec('target1', 'cat /opt/infra-tvars/peers.conf')).stdout).toBe('tier = edge\ngreeting = hello\npeers = target1,target2\n');
  }, 60_000);

  it('a handler that failed runs on the next run, which says why; then never again', async () => {
    await fleet.exec('target1', 'rm -rf /opt/infra-handler');
    const book = join(FIXTURES, 'handler.yaml');
    const first = await infra(['apply', book, '-i', fleet.inventoryDir, '-l', 'target1', '--json']);
    expect(first.code).toBe(1);
    const failed = taskResults(first, 'target1').find((e) => e.handler);
    expect(failed).toMatchObject({ task: 'restart app', status: 'failed' });
    const runId = (first.events[0] as { runId: string }).runId;
    // The notification is on the host, root's alone.
    expect((await fleet.exec('target1', 'stat -c "%a %U" /var/lib/infra/pending-handlers /var/lib/infra/pending-handlers/play-pending-handler.json')).stdout).toBe('700 root\n600 root\n');
    expect(JSON.parse((await fleet.exec('target1', 'cat /var/lib/infra/pending-handlers/play-pending-handler.json')).stdout)).toMatchObject({
      handlers: [{ name: 'restart app', runId }],
    });

    await fleet.exec('target1', 'touch /opt/infra-handler/ready');
    const second = await infra(['apply', book, '-i', fleet.inventoryDir, '-l', 'target1', '--json']);
    expect(second.code).toBe(0);
    const results = taskResults(second, 'target1');
    expect(results.filter((e) => !e.handler).map((e) => e.status)).toEqual(['ok', 'ok']);
    expect(results.find((e) => e.handler)).toMatchObject({ task: `restart app (pending from run ${runId})`, status: 'changed' });
    expect((await fleet.exec('target1', 'cat /opt/infra-handler/restarts')).stdout).toBe('restarted\n');
    expect((await fleet.exec('target1', 'ls -A /var/lib/infra/pending-handlers')).stdout).toBe('');

    const third = await infra(['apply', book, '-i', fleet.inventoryDir, '-l', 'target1', '--json']);
    expect(third.code).toBe(0);
    expect(taskResults(third, 'target1').some((e) => e.handler)).toBe(false);
    expect((await fleet.exec('target1', 'cat /opt/infra-handler/restarts')).stdout).toBe('restarted\n');
  }, 120_000);

  it('Ctrl-C twice: the remote command is killed, the lock released, the run recorded as aborted, exit 130', async () => {
    await fleet.exec('target1', 'rm -f /opt/infra-abort-1 /opt/infra-abort-2');
    const run = startInfra(['apply', join(FIXTURES, 'abort.yaml'), '-i', fleet.inventoryDir, '-l', 'target1', '--json'], /"task.start".*sleep 300/);
    await run.seen;
    expect((await leftovers('target1', 'sleep 300')).procs).toMatch(/sleep 300/);
    // exec takes the same run lock, and says it is an exec.
    const exec = await infra(['exec', '-i', fleet.inventoryDir, '-l', 'target1', '--json', '--', 'true']);
    expect(exec.code).toBe(1);
    expect(exec.events[0]).toMatchObject({ type: 'run.start', mode: 'exec' });
    expect(exec.events.find((e) => e.type === 'host.failed')).toMatchObject({ host: 'target1', error: expect.stringMatching(/^target1 is locked by .*abort\.yaml/) });
    expect(exec.recap).toEqual([expect.objectContaining({ host: 'target1', failed: 1 })]);
    run.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    const abortMs = Date.now() - t0;
    console.log(`abort: exit ${abortMs} ms after the second Ctrl-C`);
    expect(abortMs).toBeLessThan(10_000);
    expect(await leftoversAfterKill('target1', 'sleep 300')).toEqual({ procs: '', lock: 'free' });
    const end = run.output().split('\n').find((l) => l.includes('"run.end"'))!;
    const { runId, recap } = JSON.parse(end);
    expect(recap).toEqual([expect.objectContaining({ host: 'target1', changed: 1, failed: 1, error: expect.stringContaining('aborted') })]);
    // The run changed the host: both audit trails have it, marked aborted.
    expect((await localAudit()).at(-1)).toMatchObject({ runId, result: 'aborted', exitCode: 130 });
    expect((await hostAudit('target1')).at(-1)).toMatchObject({ runId, result: 'aborted' });
    expect((await fleet.exec('target1', 'test -e /opt/infra-abort-2; echo $?')).stdout.trim()).toBe('1');
  }, 120_000);

  it('a bug that escapes: exit 70, its message redacted, the remote command killed, the run recorded', async () => {
    await fleet.exec('target2', 'rm -f /opt/infra-crash-1');
    const secret = 'crash-secret-value-2';
    await writeGroupVars(secret);
    const run = startInfra(['run', 'crash', '-i', fleet.inventoryDir, '-l', 'target2', '--json'], /"task.start".*test\.crash/, { cwd: join(REPO, 'test/fixtures/engine-roles') });
    await run.seen;
    expect(await run.exited).toBe(70);
    const stderr = run.stderr();
    expect(stderr).toMatch(/internal error \(a bug\): .*boom with \*+ inside/);
    expect(stderr + run.output()).not.toContain(secret);
    expect(await leftoversAfterKill('target2', 'sleep 300')).toEqual({ procs: '', lock: 'free' });
    const start = JSON.parse(run.output().split('\n')[0]);
    expect((await localAudit()).at(-1)).toMatchObject({ runId: start.runId, result: 'aborted', exitCode: 70 });
    expect((await hostAudit('target2')).at(-1)).toMatchObject({ runId: start.runId, result: 'aborted' });
  }, 120_000);

  it('apply plan.json refuses a host when only a vault value changed since the plan', async () => {
    await fleet.exec('target1', 'rm -f /opt/infra-secret-drift');
    await writeGroupVars('first-secret-value-1');
    const planFile = join(work, 'secret-plan.json');
    const book = join(FIXTURES, 'secret-drift.yaml');
    const plan = await infra(['plan', book, '-i', fleet.inventoryDir, '-l', 'target1', '--out', planFile, '--json']);
    expect(plan.code).toBe(0);
    const saved = await readFile(planFile, 'utf8');
    expect(saved).not.toContain('first-secret-value-1');
    // Nothing but the secret's value changes.
    await writeGroupVars('second-secret-value-2');
    const r = await infra(['apply', planFile, '--json']);
    expect(r.code).toBe(1);
    expect(r.events.find((e) => e.type === 'host.failed')).toMatchObject({ host: 'target1', error: expect.stringContaining('drifted since plan: command.run echo') });
    expect((await fleet.exec('target1', 'test -e /opt/infra-secret-drift; echo $?')).stdout.trim()).toBe('1');
    // With the value it was planned with, the same plan applies.
    await writeGroupVars('first-secret-value-1');
    const ok = await infra(['apply', planFile, '--json']);
    expect(ok.code).toBe(0);
    expect((await fleet.exec('target1', 'cat /opt/infra-secret-drift')).stdout).toBe('first-secret-value-1\n');
  }, 120_000);

  it('apply plan.json names the inventory as it was given, not its absolute path', async () => {
    const dir = await mkdtemp(join(work, 'named-'));
    await mkdir(join(dir, 'inventories'));
    await symlink(fleet.inventoryDir, join(dir, 'inventories', 'fleet'));
    const planFile = join(dir, 'plan.json');
    const plan = await infra(['plan', PLAYBOOK, '-i', 'fleet', '-l', 'target1', '--out', planFile], { cwd: dir });
    expect(plan.code).toBe(0);
    const r = await infra(['apply', planFile]);
    expect(r.stdout.split('\n')[0]).toMatch(/ — apply — 1 host of fleet — run [0-9a-f]{8}$/);
    expect(r.stdout).not.toContain(basename(fleet.inventoryDir));
  }, 120_000);

  it('a module can open a fresh connection to its host through the same route (probeConnection)', async () => {
    const r = await infra(['run', 'probe', '-i', fleet.inventoryDir, '-l', 'target1', '--json'], { cwd: join(REPO, 'test/fixtures/engine-roles') });
    expect(r.code, r.stderr).toBe(0);
    const probe = taskResults(r, 'target1')[0];
    expect(probe).toMatchObject({ status: 'ok', reason: expect.stringMatching(/^probe ok in \d+ ms$/) });
    console.log(`probeConnection: ${probe.reason}`);
    // The session's own connection stays the only one counted: the probe is not the session.
    expect(r.recap[0].counters).toMatchObject({ connections: 1 });
  }, 60_000);

  it('a wrong become password is the same refusal (FAILED, counted, with the reason) in apply and exec', async () => {
    const setup = await fleet.exec(
      'target2',
      [
        'id pwuser >/dev/null 2>&1 || useradd -m -s /bin/sh pwuser',
        "echo 'pwuser:right-Pass-1' | chpasswd",
        "echo 'pwuser ALL=(ALL) ALL' > /etc/sudoers.d/pwuser && chmod 440 /etc/sudoers.d/pwuser",
        'install -d -m 700 -o pwuser -g pwuser /home/pwuser/.ssh',
        'install -m 600 -o pwuser -g pwuser /home/admin/.ssh/authorized_keys /home/pwuser/.ssh/authorized_keys',
      ].join(' && '),
    );
    expect(setup.code, setup.stderr).toBe(0);
    const dir = await mkdtemp(join(work, 'become-'));
    const wrong = await vaultEncrypt('becomePassword', 'wrong-Pass-2', passwordFile);
    const target2 = fleet.targets.find((t) => t.name === 'target2')!;
    await writeFile(
      join(dir, 'hosts.yaml'),
      [
        'hosts:',
        `  bastion: { address: 127.0.0.1, port: ${fleet.bastion.port}, groups: [bastion], bastion: null }`,
        '  target2:',
        `    address: ${target2.ip}`,
        '    groups: [targets]',
        '    user: pwuser',
        `    becomePassword: ${wrong}`,
        '    vars: { greeting: hello }', // the playbook's template needs it (validated before connecting)
        'groups:',
        `  all: { user: admin, key: ${fleet.keyPath}, bastion: bastion, become: sudo }`,
        '  bastion: {}',
        '  targets: {}',
        '',
      ].join('\n'),
    );
    await writeFile(join(dir, 'known_hosts'), await readFile(join(fleet.inventoryDir, 'known_hosts')));
    for (const args of [
      ['apply', join(FIXTURES, 'template-vars.yaml'), '-i', dir, '-l', 'target2', '--json'],
      ['exec', '-i', dir, '-l', 'target2', '--json', '--', 'true'],
    ]) {
      const r = await infra(args);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(1);
      expect(r.events.some((e) => e.type === 'host.unreachable'), args[0]).toBe(false);
      expect(r.events.find((e) => e.type === 'host.failed'), args[0]).toMatchObject({ host: 'target2', error: 'sudo rejected the become password' });
      expect(r.recap, args[0]).toEqual([expect.objectContaining({ host: 'target2', failed: 1, unreachable: false, error: 'sudo rejected the become password' })]);
    }
  }, 120_000);

  it('a frozen host is unreachable within the keepalive bound (--keepalive-interval × --keepalive-count)', async () => {
    await fleet.exec('target2', 'rm -f /opt/infra-slow-1 /opt/infra-slow-2 /opt/infra-slow-handler');
    const id = (await docker(['ps', '-q', '--filter', `label=infra-test.pid=${process.pid}`, '--filter', 'label=infra-test.host=target2'])).trim().split('\n')[0];
    expect(id).toMatch(/^[0-9a-f]+$/);
    const run = startInfra(
      ['apply', join(FIXTURES, 'slow.yaml'), '-i', fleet.inventoryDir, '-l', 'target2', '--json', '--keepalive-interval', '1s', '--keepalive-count', '2'],
      /"task.start".*sleep 4/,
    );
    await run.seen;
    await docker(['pause', id]);
    const t0 = Date.now();
    try {
      expect(await run.exited).toBe(1);
      const ms = Date.now() - t0;
      console.log(`frozen host declared unreachable after ${ms} ms (keepalive 1 s × 2)`);
      expect(ms).toBeLessThan(10_000);
      expect(run.output()).toMatch(/"type":"host.unreachable","host":"target2"/);
    } finally {
      await docker(['unpause', id]);
    }
  }, 60_000);
});
