/**
 * Issue 10 item 17, end to end through the bastion: an sshd or firewall change that would cut
 * the controller off is rolled back, commit-confirm style, instead of being found on the next
 * run. The hardening role with a firewall that shuts the bastion out, then with an sshd port
 * the inventory does not use: each time the task fails saying it rolled back, the old config
 * is live again and the next run connects. And a controller killed mid-confirm: the host's
 * timer rolls back by itself. Assertions go through `docker exec` (not the SSH route under test).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startFleet, type Fleet } from './fleet.js';
import { infra, taskResults, INFRA_BIN, REPO, type CliResult } from './helpers/cli.js';
import { guardFor } from '../../src/modules/confirm.js';

let fleet: Fleet;
let work: string;
let env: Record<string, string>;
let first: CliResult;

const hosts = () => join(fleet.inventoryDir, 'hosts.yaml');
const hardening = (...extra: string[]) => infra(['run', 'hardening', '-i', fleet.inventoryDir, '-l', 'target1', '--json', ...extra], { env, timeoutMs: 600_000 });
const on = async (cmd: string) => (await fleet.exec('target1', cmd)).stdout;
const output = (r: CliResult) => `${r.stdout}\n${r.stderr}`;
/** The rule opening SSH to one address (nft prints a one-element set without braces). */
const sshFrom = (ip: string) => new RegExp(`ip saddr (\\{ )?${ip.replace(/\./g, '\\.')}( \\})? tcp dport 22 accept`);
const confirmTasks = (r: CliResult) => taskResults(r, 'target1').filter((e) => e.module === 'confirm.files');
/** Nothing of a guard is left on the host: no timer, no copies. */
const leftovers = () => on("systemctl list-units --all --plain --no-legend 'infra-confirm-*'; ls -A /var/lib/infra/confirm 2>/dev/null; true");

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'infra-lockout-'));
  env = { XDG_STATE_HOME: join(work, 'state') };
  fleet = await startFleet({ targets: 1, baseline: true }); // hardening's packages there
  // The good state every test starts from (and the guarded path on a first install).
  first = await hardening();
}, 700_000);
afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('lockout safety (commit-confirm) through the bastion', () => {
  it('a good first run activates sshd and the firewall in their own tasks and confirms them', async () => {
    expect(first.code, output(first)).toBe(0);
    const guarded = confirmTasks(first);
    expect(guarded.map((e) => [e.task, e.status])).toEqual([
      [expect.stringContaining('/etc/ssh/sshd_config.d/20-hardening.conf'), 'changed'],
      [expect.stringContaining('/etc/nftables.conf, /etc/nftables.d/infra.nft'), 'changed'],
    ]);
    // What a guard costs on a good run, next to a plain template write of the same run.
    const plain = taskResults(first, 'target1').find((e) => e.task.includes('/etc/systemd/journald.conf.d/10-infra.conf'))!;
    console.log(`guarded tasks on a good run: ${guarded.map((e) => `${e.ms} ms`).join(', ')} (a plain template write: ${plain.ms} ms)`);
    expect(await on('nft list table inet infra_filter')).toMatch(sshFrom(fleet.bastion.ip));
    expect(await leftovers()).toBe('');
  });

  it('what a guard costs on a good run: one new connection (and an arm and a confirm) over a plain write', async () => {
    const content = 'n = {{ vars.n }}\n';
    const playbook = join(work, 'cost.yaml');
    await writeFile(
      playbook,
      stringify([
        {
          name: 'cost',
          hosts: 'target1',
          tasks: [
            { 'files.file': { path: '/etc/infra-cost-plain.conf', content } },
            { 'confirm.files': { files: [{ path: '/etc/infra-cost-guarded.conf', content }], activate: 'true' } },
          ],
        },
      ]),
    );
    const plain: number[] = [];
    const guarded: number[] = [];
    for (const n of [1, 2, 3, 4, 5]) {
      const r = await infra(['apply', playbook, '-i', fleet.inventoryDir, '--json', '-e', `n=${n}`], { env });
      expect(r.code, output(r)).toBe(0);
      const [p, g] = taskResults(r, 'target1');
      expect([p.status, g.status]).toEqual(['changed', 'changed']);
      plain.push(p.ms);
      guarded.push(g.ms);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`good run, median of 5: plain write ${median(plain)} ms, guarded write ${median(guarded)} ms (guarded: ${guarded.join(', ')} ms)`);
    expect(median(guarded) - median(plain)).toBeLessThan(3000);
    expect(await leftovers()).toBe('');
  }, 300_000);

  it('a firewall that shuts out the bastion is rolled back at once; the next run connects', async () => {
    const original = await readFile(hosts(), 'utf8');
    const inv = parse(original);
    inv.hosts.bastion.vars.private_address = '10.99.99.99';
    await writeFile(hosts(), stringify(inv));
    let bad: CliResult;
    try {
      bad = await hardening();
    } finally {
      await writeFile(hosts(), original);
    }
    expect(bad.code, output(bad)).toBe(1);
    const failed = taskResults(bad, 'target1').filter((e) => e.status === 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].module).toBe('confirm.files');
    expect(failed[0].error).toMatch(
      /^new connection after `systemctl reload-or-restart nftables` failed \(timeout after \d+\.\d s: .*; 1 attempt\(s\) in \d+\.\d s\): rolled back to the previous \/etc\/nftables\.d\/infra\.nft; the session stayed up; a new connection works again$/,
    );
    console.log(`firewall lockout: detected and rolled back in ${failed[0].ms} ms (task time)`);
    // The previous ruleset is live again, and on disk.
    const ruleset = await on('nft list ruleset');
    expect(ruleset).toMatch(sshFrom(fleet.bastion.ip));
    expect(ruleset).not.toContain('10.99.99.99');
    expect(await on('cat /etc/nftables.d/infra.nft')).toMatch(sshFrom(fleet.bastion.ip));
    expect(await leftovers()).toBe('');

    const next = await hardening();
    expect(next.code, output(next)).toBe(0);
    expect(next.changed).toBe(0);
  }, 600_000);

  it('an sshd config that passes sshd -t but moves SSH off the inventory port is rolled back; the next run connects', async () => {
    const bad = await hardening('-e', '{"ssh_port": 2222}');
    expect(bad.code, output(bad)).toBe(1);
    const failed = taskResults(bad, 'target1').filter((e) => e.status === 'failed');
    expect(failed.map((e) => e.module)).toEqual(['confirm.files']);
    expect(failed[0].error).toMatch(
      /^new connection after `systemctl reload ssh` failed \(.*; \d attempt\(s\) in \d+\.\d s\): rolled back to the previous \/etc\/ssh\/sshd_config\.d\/20-hardening\.conf; the session stayed up; a new connection works again$/,
    );
    console.log(`sshd lockout: detected and rolled back in ${failed[0].ms} ms (task time)`);
    expect(await on('sshd -T | grep "^port "')).toBe('port 22\n');
    expect(await on('grep "^Port" /etc/ssh/sshd_config.d/20-hardening.conf')).toBe('Port 22\n');
    // The firewall task after it never ran: the host stopped at the failed task.
    expect(await on('nft list table inet infra_filter')).not.toContain('2222');
    expect(await leftovers()).toBe('');

    const next = await hardening();
    expect(next.code, output(next)).toBe(0);
    expect(next.changed).toBe(0);
  }, 600_000);

  it('the controller dies mid-confirm, the new firewall cutting SSH: the host rolls back by itself', async () => {
    const path = '/etc/infra-lockout-test.nft';
    const within = 20;
    const playbook = await guardedPlaybook('cut-ssh.yaml', {
      files: [{ path, content: 'table inet lockout_test {\n  chain input {\n    type filter hook input priority -10; policy accept;\n    tcp dport 22 ct state new drop\n  }\n}\n' }],
      validate: 'nft -c -f %s',
      activate: `nft -f ${path}`,
      rollback: 'nft delete table inet lockout_test',
      within,
    });
    // Armed and activated: the controller is probing (a dropped SYN: up to 10 s). Kill it then.
    const { killedAt, armedAt } = await killWhen(playbook, path, `systemctl is-active --quiet ${unitOf(path)}.timer && nft list table inet lockout_test >/dev/null 2>&1`);

    const restoredAt = await waitFor(`! nft list table inet lockout_test >/dev/null 2>&1 && [ ! -e ${path} ]`, (within + 15) * 1000);
    expect(restoredAt).toBeDefined();
    const after = (restoredAt! - armedAt) / 1000;
    console.log(`controller killed ${((killedAt - armedAt) / 1000).toFixed(1)} s after arming; the host rolled back by itself ${after.toFixed(1)} s after arming (within ${within} s)`);
    expect(after).toBeGreaterThan(within - 2);
    expect(after).toBeLessThan(within + 5);
    expect(await on(`systemctl is-active ${unitOf(path)}.timer; true`)).toBe('inactive\n');
    expect(await on('journalctl -t infra-confirm --no-pager -o cat')).toContain(`rolled back ${path} (exit 0)`);

    // The next run connects, and its plan says the host rolled the last change back.
    const plan = await infra(['plan', playbook, '-i', fleet.inventoryDir, '--json'], { env });
    expect(plan.recap[0]?.unreachable, output(plan)).toBe(false);
    expect(taskResults(plan, 'target1')[0].changes.map((c) => c.what)).toEqual([
      'the last change was rolled back by the host',
      `${path}: create`,
      'activate, confirmed by a new connection',
    ]);
  }, 300_000);

  it('the controller dies before confirming a change that works: a re-run is refused while the rollback is pending', async () => {
    const path = '/etc/infra-lockout-slow.conf';
    const within = 20;
    const playbook = await guardedPlaybook('slow.yaml', { files: [{ path, content: 'harmless\n' }], activate: 'sleep 5', rollback: 'true', within });
    const { armedAt } = await killWhen(playbook, path, `systemctl is-active --quiet ${unitOf(path)}.timer && [ -e ${path} ]`);

    // SSH still works, so a new run gets in: it must not take the unconfirmed change for the state to keep.
    // (It waits for the run lock: the killed run's `sleep` keeps it until it ends.)
    const meanwhile = await infra(['apply', playbook, '-i', fleet.inventoryDir, '--json', '--lock-wait', '15s'], { env });
    expect(Date.now(), 'the re-run must happen before the timer fires').toBeLessThan(armedAt + within * 1000);
    const refused = taskResults(meanwhile, 'target1')[0];
    expect(refused?.status, output(meanwhile)).toBe('failed');
    expect(refused.error).toMatch(
      /^a rollback of \/etc\/infra-lockout-slow\.conf armed at \d\d:\d\d:\d\d is still pending on this host: that change was never confirmed \(its controller died\?\)\. The host restores the old files by \d\d:\d\d:\d\d/,
    );
    expect(await on(`cat ${path}`)).toBe('harmless\n');
    expect(await waitFor(`[ ! -e ${path} ]`, (within + 15) * 1000)).toBeDefined();
    expect(await on(`systemctl is-active ${unitOf(path)}.timer; ls ${guardOf(path).dir}`)).toMatch(/^inactive\n(.*\n)*rolled-back\n/);
  }, 300_000);
});

const guardOf = (path: string) => guardFor({ paths: [path], within: 0, rollback: '' });
const unitOf = (path: string) => guardOf(path).unit;

/** A one-task playbook: confirm.files with these params, on target1. */
async function guardedPlaybook(name: string, params: Record<string, unknown>): Promise<string> {
  const file = join(work, name);
  await writeFile(file, stringify([{ name, hosts: 'target1', tasks: [{ 'confirm.files': params }] }]));
  return file;
}

/** Applies the playbook (guarding `path`) and SIGKILLs the CLI as soon as `cmd` succeeds on target1. */
async function killWhen(playbook: string, path: string, cmd: string): Promise<{ killedAt: number; armedAt: number }> {
  const cli = spawn(process.execPath, [INFRA_BIN, 'apply', playbook, '-i', fleet.inventoryDir, '--json'], { cwd: REPO, env: { ...process.env, ...env, CI: '1' } });
  const exited = new Promise<void>((res) => cli.on('close', () => res()));
  const ready = await waitFor(cmd, 120_000, 100);
  cli.kill('SIGKILL');
  await exited;
  expect(ready, `never saw: ${cmd}`).toBeDefined();
  const armedAt = Number((await on(`cat ${guardOf(path).dir}/armed`)).split(' ')[0]) * 1000;
  return { killedAt: Date.now(), armedAt };
}

/** When `cmd` first succeeded on target1 (epoch ms), or undefined after `ms`. */
async function waitFor(cmd: string, ms: number, every = 250): Promise<number | undefined> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if ((await fleet.exec('target1', cmd)).code === 0) return Date.now();
    await new Promise((r) => setTimeout(r, every));
  }
  return undefined;
}
