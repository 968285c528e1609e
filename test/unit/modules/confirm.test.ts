/**
 * confirm.files (commit-confirmed file changes): its host scripts run for real by a local sh
 * in a temp dir (the sleep fallback: this machine's systemd timers are never touched), and
 * its decisions against a scripted host: what it arms, when it confirms, how it rolls back,
 * and what the task's error says.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { confirm } from '../../../src/modules/index.js';
import { CLAIMED, armScript, confirmScript, guardFor, rollbackNowScript, rollbackScript, stateScript, type Guard } from '../../../src/modules/confirm.js';
import type { ProbeResult } from '../../../src/modules/types.js';
import type { PutOptions, RunOptions } from '../../../src/transport/types.js';
import { HostUnreachable } from '../../../src/transport/types.js';
import { makeTask } from '../../../src/modules/types.js';
import { renderTaskParams } from '../../../src/playbook/params.js';
import { createRenderer } from '../../../src/render/template.js';
import { fakeHost, fileProbe, type Scripted, withChanges } from './fake-host.js';

const m = confirm.files.module;
const parse = (v: unknown) => m.params.parse(v);

// ------------------------------------------------------------------ the scripts, for real

describe('host scripts (run by sh, sleep fallback)', () => {
  let dir: string;
  let g: Guard;
  // Hostile names: a space, a quote, a command substitution.
  const a = () => join(dir, 'files', 'a b.conf');
  const b = () => join(dir, 'files', "it's $(touch pwned).nft");
  const sh = (script: string, input = '') => {
    const r = spawnSync('sh', ['-c', script], { input, cwd: dir, encoding: 'utf8' });
    return { code: r.status, out: r.stdout + r.stderr };
  };
  const guard = (within: number) =>
    guardFor({ paths: [a(), b()], within, rollback: `echo rolled-back >> ${join(dir, 'rollback-ran')}` }, { base: join(dir, 'confirm'), systemd: false });
  /** Runs (not gone, not a zombie: this machine's PID 1 may be slow to reap). */
  const running = (pid: string) => {
    const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
    return stat !== '' && !stat.replace(/^.*\) /s, '').startsWith('Z');
  };
  const sleeperAlive = () => running(readFileSync(join(g.dir, 'pid'), 'utf8').trim());
  /** A killed process takes a moment to exit. */
  const gone = (pid: string) => {
    for (let i = 0; i < 100 && running(pid); i++) spawnSync('sleep', ['0.01']);
    return !running(pid);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'infra-confirm-'));
    spawnSync('mkdir', [join(dir, 'files')]);
    writeFileSync(a(), 'old a\n', { mode: 0o640 });
    g = guard(15);
  });
  afterEach(() => {
    // Never leave a sleeper behind: it would restore files in a directory that is gone.
    if (existsSync(join(g.dir, 'pid'))) spawnSync('sh', ['-c', `kill -- -$(cat '${join(g.dir, 'pid')}') 2>/dev/null`]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('arm: copies the files (not the absent one), arms a sleeper, and says "pending"', () => {
    expect(sh(armScript(g), rollbackScript(g))).toEqual({ code: 0, out: '' });
    expect(readFileSync(join(g.dir, '0'), 'utf8')).toBe('old a\n');
    expect(statSync(join(g.dir, '0')).mode & 0o777).toBe(0o640);
    expect(existsSync(join(g.dir, '1'))).toBe(false);
    expect(statSync(join(dir, 'confirm')).mode & 0o777).toBe(0o700);
    expect(sleeperAlive()).toBe(true);
    expect(sh(stateScript(g)).out).toMatch(/^pending \d+ 15\n$/);
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
  });

  it('arm refuses while an earlier rollback is pending, and changes nothing', () => {
    sh(armScript(g), rollbackScript(g));
    const armed = readFileSync(join(g.dir, 'armed'), 'utf8');
    writeFileSync(a(), 'unconfirmed a\n');
    const again = sh(armScript(g), rollbackScript(g));
    expect(again.code).toBe(76);
    expect(again.out).toBe(armed);
    // The first copy (the good one) is still what a rollback restores.
    expect(readFileSync(join(g.dir, '0'), 'utf8')).toBe('old a\n');
  });

  it('rolling back now: the old file back (mode too), the new one removed, the command run, the sleeper killed', () => {
    sh(armScript(g), rollbackScript(g));
    const pid = readFileSync(join(g.dir, 'pid'), 'utf8').trim();
    writeFileSync(a(), 'new a\n');
    writeFileSync(b(), 'new b\n');
    expect(sh(rollbackNowScript(g)).code).toBe(0);
    expect(gone(pid)).toBe(true);
    expect(readFileSync(a(), 'utf8')).toBe('old a\n');
    expect(statSync(a()).mode & 0o777).toBe(0o640);
    expect(existsSync(b())).toBe(false);
    expect(readFileSync(join(dir, 'rollback-ran'), 'utf8')).toBe('rolled-back\n');
    expect(existsSync(g.dir)).toBe(false);
    expect(sh(stateScript(g)).out).toBe('none\n');
  });

  it('the rollback command failing is reported with its output', () => {
    g = guardFor({ paths: [a()], within: 15, rollback: 'echo cannot reload >&2; exit 3' }, { base: join(dir, 'confirm'), systemd: false });
    sh(armScript(g), rollbackScript(g));
    expect(sh(rollbackNowScript(g))).toEqual({ code: 3, out: 'cannot reload\n' });
  });

  it('confirming: the sleeper is gone, the copies too, and a late rollback does nothing', () => {
    sh(armScript(g), rollbackScript(g));
    const pid = readFileSync(join(g.dir, 'pid'), 'utf8').trim();
    const script = join(dir, 'late-rollback.sh');
    writeFileSync(script, readFileSync(join(g.dir, 'rollback.sh')));
    writeFileSync(a(), 'new a\n');
    expect(sh(confirmScript(g)).code).toBe(0);
    expect(existsSync(g.dir)).toBe(false);
    expect(gone(pid)).toBe(true);
    // A rollback firing after the confirmation (a race) finds no claim to make.
    expect(sh(`sh '${script}'`).code).not.toBe(0);
    expect(readFileSync(a(), 'utf8')).toBe('new a\n');
  });

  it('nobody confirms: the host rolls back by itself after `within` seconds; confirming then loses', async () => {
    g = guard(1);
    sh(armScript(g), rollbackScript(g));
    writeFileSync(a(), 'new a\n');
    writeFileSync(b(), 'new b\n');
    const t0 = Date.now();
    while (!existsSync(join(g.dir, 'rolled-back')) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    const ms = Date.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(3000);
    expect(readFileSync(a(), 'utf8')).toBe('old a\n');
    expect(existsSync(b())).toBe(false);
    expect(sh(stateScript(g)).out).toMatch(/^rolled-back \d+ 0\n$/);
    expect(sh(confirmScript(g)).code).toBe(CLAIMED);
    expect(sh(rollbackNowScript(g)).code).toBe(CLAIMED);
    // The next arm clears what the fired rollback left.
    expect(sh(armScript(g), rollbackScript(g)).code).toBe(0);
    expect(sh(stateScript(g)).out).toMatch(/^pending /);
  });

  it('a guard whose sleeper died (a reboot) is stale, not pending', () => {
    sh(armScript(g), rollbackScript(g));
    const pid = readFileSync(join(g.dir, 'pid'), 'utf8').trim();
    spawnSync('kill', ['--', `-${pid}`]);
    expect(gone(pid)).toBe(true);
    expect(sh(stateScript(g)).out).toBe('stale\n');
    expect(sh(armScript(g), rollbackScript(g)).code).toBe(0);
  });
});

describe('guardFor', () => {
  it('names the timer after the first path, unique per set of paths, systemd-safe', () => {
    const one = guardFor({ paths: ['/etc/nftables.conf', '/etc/nftables.d/infra.nft'], within: 60, rollback: 'x' });
    expect(one.unit).toMatch(/^infra-confirm-etc-nftables\.conf-[0-9a-f]{8}$/);
    expect(one.dir).toBe(`/var/lib/infra/confirm/${one.unit.slice('infra-confirm-'.length)}`);
    expect(guardFor({ paths: ['/etc/nftables.conf'], within: 60, rollback: 'x' }).unit).not.toBe(one.unit);
    expect(guardFor({ paths: ["/etc/x y/'$(id)"], within: 60, rollback: 'x' }).unit).toMatch(/^infra-confirm-[A-Za-z0-9_.-]+$/);
  });

  it('with systemd: a transient timer that collects itself, no sleeper', () => {
    const s = armScript(guardFor({ paths: ['/etc/ssh/sshd_config.d/20-hardening.conf'], within: 60, rollback: 'systemctl reload ssh' }));
    expect(s).toContain('systemd-run --quiet --collect --unit="$u" --on-active=60s');
    expect(s).toContain('if [ -d /run/systemd/system ] && command -v systemd-run');
  });
});

// ------------------------------------------------------------------ params

describe('params', () => {
  const base = { files: [{ path: '/etc/x', content: 'x\n' }], activate: 'systemctl reload x' };

  it.each([
    ['a file with its own validate', { ...base, files: [{ path: '/etc/x', content: 'x', validate: 'check %s' }] }, /give validate once/],
    ['the same path twice', { ...base, files: [base.files[0], base.files[0]] }, /each path once/],
    ['no file', { ...base, files: [] }, /at least 1/],
    ['no activate', { files: base.files }, /activate/],
    ['a window too short to probe in', { ...base, within: 5 }, /greater than or equal to 15/],
    ['validate without %s', { ...base, validate: 'nft -c' }, /%s/],
  ])('refuses %s', (_what, p, msg) => {
    expect(() => parse(p)).toThrow(msg);
  });

  it('in YAML, activate, rollback and validate are shell fields (each {{…}} one quoted word); file contents are not', () => {
    const render = createRenderer({ sharedDir: '/nonexistent' }).renderString;
    const t = makeTask(m, {
      files: [{ path: '/etc/x', content: 'unit = {{vars.unit}}\n' }],
      validate: 'check {{vars.unit}} %s',
      activate: 'systemctl reload {{vars.unit}}',
      rollback: 'systemctl restart {{vars.unit}}',
    });
    const data = { vars: { unit: "x'; rm -rf / #" }, host: { name: 'web1' } };
    expect(renderTaskParams(t, data, render)).toEqual({
      files: [{ path: '/etc/x', content: "unit = x'; rm -rf / #\n" }],
      validate: `check 'x'\\''; rm -rf / #' %s`,
      activate: `systemctl reload 'x'\\''; rm -rf / #'`,
      rollback: `systemctl restart 'x'\\''; rm -rf / #'`,
    });
  });

  it('defaults within to 60 s and keeps file params as files.file has them', () => {
    expect(parse(base)).toMatchObject({ within: 60, files: [{ path: '/etc/x', content: 'x\n', sensitive: false }] });
  });
});

// ------------------------------------------------------------------ decisions, scripted host

interface Recorded {
  cmd: string;
  opts?: RunOptions;
}

/** fakeHost + the run options it saw + scripted probe results + a put that can fail. */
function host(answers: Scripted[], o: { probes?: ProbeResult[]; checkMode?: boolean; putError?: Error; lostAt?: number } = {}) {
  const h = fakeHost(answers, { checkMode: o.checkMode });
  const runs: Recorded[] = [];
  const probes = [...(o.probes ?? [])];
  const probed = { count: 0 };
  const run = h.run.bind(h);
  return Object.assign(h, {
    runs,
    probed,
    async run(cmd: string, opts?: RunOptions) {
      runs.push({ cmd, opts });
      // From this command on, the session is gone.
      if (o.lostAt !== undefined && runs.length >= o.lostAt) throw new HostUnreachable('web1', 'connection lost: state unknown');
      return run(cmd);
    },
    async put(path: string, bytes: string | Buffer, opts?: PutOptions) {
      if (o.putError) throw o.putError;
      h.puts.push({ path, bytes: bytes.toString(), opts });
    },
    async probeConnection() {
      probed.count++;
      const r = probes.shift();
      if (!r) throw new Error('unexpected probe');
      return r;
    },
  });
}

const OLD = fileProbe({ content: 'old\n', mode: '644' });
const P = parse({ files: [{ path: '/etc/x.nft', content: 'new\n', mode: '0644' }], activate: 'systemctl reload nftables', within: 30 });
const OK: ProbeResult = { ok: true, ms: 480 };
const TIMEOUT: ProbeResult = { ok: false, ms: 10_003, error: 'bastion bastion did not open a channel to 10.0.0.5:22 within 10000 ms' };
const REFUSED: ProbeResult = { ok: false, ms: 40, error: 'All configured authentication methods failed' };

async function checked(h: ReturnType<typeof host>, p = P) {
  return m.check(h, p);
}

describe('check', () => {
  it('lists each file change, then the activation; reads only (nothing armed)', async () => {
    const h = host([{ stdout: 'none\n' }, { stdout: OLD }], { checkMode: true });
    const c = await checked(h);
    expect(c.changes.map((x) => x.what)).toEqual(['/etc/x.nft: content', 'activate, confirmed by a new connection']);
    expect(c.changes[1]?.to).toBe('systemctl reload nftables (rolled back unless confirmed within 30 s)');
    expect(c.diff).toHaveLength(1);
    expect(h.runs.map((r) => r.cmd.split('\n')[0])).toEqual([expect.stringMatching(/^d=\/var\/lib\/infra\/confirm\//), "p=/etc/x.nft"]);
    expect(h.runs.some((r) => /systemd-run|setsid|mkdir/.test(r.cmd))).toBe(false);
  });

  it('nothing to do when every file is up to date', async () => {
    const c = await checked(host([{ stdout: 'none\n' }, { stdout: fileProbe({ content: 'new\n', mode: '644' }) }]));
    expect(c.changes).toEqual([]);
    expect(c.reason).toBe('/etc/x.nft up to date');
  });

  it('a rollback still pending (its controller died) stops the task: the change was never confirmed', async () => {
    const armed = Math.floor(Date.now() / 1000) - 10;
    await expect(checked(host([{ stdout: `pending ${armed} 30\n` }, { stdout: OLD }]))).rejects.toThrow(
      /a rollback of \/etc\/x\.nft armed at \d\d:\d\d:\d\d is still pending on this host: that change was never confirmed .* by \d\d:\d\d:\d\d \(timer infra-confirm-etc-x\.nft-[0-9a-f]{8}\); run again after that/,
    );
  });

  it('says when the host rolled back the last change by itself', async () => {
    const c = await checked(host([{ stdout: 'rolled-back 1796065842 0\n' }, { stdout: OLD }]));
    expect(c.changes[0]).toMatchObject({ what: 'the last change was rolled back by the host', from: expect.stringMatching(/^at \d\d:\d\d:\d\d, never confirmed$/) });
  });
});

describe('apply', () => {
  it('good change: arm (rollback.sh on stdin), write, activate, one probe, confirm', async () => {
    const h = host([{ stdout: 'none\n' }, { stdout: OLD }, {}, {}, {}], { probes: [OK] });
    const c = await checked(h);
    await m.apply(h, P, withChanges(c));
    const [arm, activate, confirmed] = h.runs.slice(2);
    expect(arm.cmd).toContain('cp -a -- /etc/x.nft "$d/0"');
    expect(String(arm.opts?.stdin)).toContain('mkdir "$d/claimed" 2>/dev/null || exit 75');
    expect(String(arm.opts?.stdin)).toContain('( systemctl reload nftables\n)');
    expect(h.puts.map((p) => [p.path, p.bytes])).toEqual([['/etc/x.nft', 'new\n']]);
    expect(activate.cmd).toBe('systemctl reload nftables');
    expect(activate.opts?.timeoutMs).toBe(10_000);
    expect(confirmed.cmd).toContain('rm -rf -- "$d"');
    expect(h.probed.count).toBe(1);
  });

  it('the route is cut (the probe timed out): rolled back through the session, which stayed up, and the task says so', async () => {
    const h = host([{ stdout: 'none\n' }, { stdout: OLD }, {}, {}, {}], { probes: [TIMEOUT, OK] });
    const c = await checked(h);
    await expect(m.apply(h, P, withChanges(c))).rejects.toThrow(
      /^new connection after `systemctl reload nftables` failed \(timeout after 10\.0 s: bastion bastion did not open a channel to 10\.0\.0\.5:22 within 10000 ms; 1 attempt\(s\) in \d+\.\d s\): rolled back to the previous \/etc\/x\.nft; the session stayed up; a new connection works again$/,
    );
    expect(h.runs[4].cmd).toContain('/bin/sh "$d/rollback.sh"');
    // A timeout is not retried (the route is cut: trying again only waits); the second probe checks the rollback.
    expect(h.probed.count).toBe(2);
  });

  it('a quick refusal (sshd reloading) is tried again, up to 3 times, then rolled back', async () => {
    const h = host([{ stdout: 'none\n' }, { stdout: 'absent\n' }, {}, {}, {}], { probes: [REFUSED, REFUSED, REFUSED, TIMEOUT] });
    const c = await checked(h);
    await expect(m.apply(h, P, withChanges(c))).rejects.toThrow(
      /failed \(All configured authentication methods failed; 3 attempt\(s\) in \d+\.\d s\): rolled back: removed the new \/etc\/x\.nft \(there was none before\); the session stayed up; a new connection still fails \(timeout after 10\.0 s: bastion/,
    );
  });

  it('after a rollback, a refused connection (sshd reloading) is tried again before the task says it still fails', async () => {
    const h = host([{ stdout: 'none\n' }, { stdout: 'absent\n' }, {}, {}, {}], { probes: [REFUSED, REFUSED, REFUSED, REFUSED, OK] });
    await expect(m.apply(h, P, withChanges(await checked(h)))).rejects.toThrow(/the session stayed up; a new connection works again$/);
  });

  it('a refusal and then success confirms', async () => {
    const h = host([{ stdout: 'none\n' }, { stdout: OLD }, {}, {}, {}], { probes: [REFUSED, OK] });
    await m.apply(h, P, withChanges(await checked(h)));
    expect(h.runs[4].cmd).toContain('rm -rf -- "$d"');
  });

  it('activation fails: rolled back, with its error', async () => {
    const h = host([{ stdout: 'none\n' }, { stdout: OLD }, {}, { code: 1, stderr: 'Job for nftables.service failed.' }, {}], { probes: [OK] });
    await expect(m.apply(h, P, withChanges(await checked(h)))).rejects.toThrow(
      /^`systemctl reload nftables` failed \(exit 1\):\nJob for nftables.service failed.: rolled back to the previous \/etc\/x\.nft; the session stayed up; a new connection works again$/,
    );
  });

  it('a file fails validation: the files already written are put back, nothing is activated or probed', async () => {
    const h = host([{ stdout: 'none\n' }, { stdout: OLD }, {}, {}], { putError: new Error('validate failed for /etc/x.nft (nft -c -f %s), file left unchanged: syntax error') });
    await expect(m.apply(h, P, withChanges(await checked(h)))).rejects.toThrow(/^validate failed for \/etc\/x\.nft .*syntax error: rolled back to the previous \/etc\/x\.nft; the session stayed up$/);
    expect(h.runs.map((r) => r.cmd)).not.toContain('systemctl reload nftables');
    expect(h.probed.count).toBe(0);
  });

  it('the rollback command fails: said, with its output', async () => {
    const h = host([{ stdout: 'none\n' }, { stdout: OLD }, {}, {}, { code: 1, stderr: 'Job for nftables.service failed.\n' }], { probes: [TIMEOUT, TIMEOUT] });
    await expect(m.apply(h, P, withChanges(await checked(h)))).rejects.toThrow(/rolled back to the previous \/etc\/x\.nft, but the rollback command failed \(exit 1\): Job for nftables.service failed\.; a new connection still fails/);
  });

  it('the host rolled back first (the probe outlived `within`): confirming loses, and the task fails', async () => {
    const h = host([{ stdout: 'none\n' }, { stdout: OLD }, {}, {}, { code: CLAIMED }], { probes: [OK] });
    await expect(m.apply(h, P, withChanges(await checked(h)))).rejects.toThrow(/a new connection worked, but the host had already rolled back by itself .*rolled back to the previous \/etc\/x\.nft; raise within/);
  });

  it('the session is lost just before confirming: the good change is rolled back by the host, and the task says when', async () => {
    const h = host([{ stdout: 'none\n' }, { stdout: OLD }, {}, {}], { probes: [OK], lostAt: 5 });
    await expect(m.apply(h, P, withChanges(await checked(h)))).rejects.toThrow(
      /^a new connection worked, but the session was lost before confirming: the host rolls back by itself at \d\d:\d\d:\d\d \(rolled back to the previous \/etc\/x\.nft\); run again after that$/,
    );
  });

  it('the arm is refused (pending, not root): nothing is written', async () => {
    const pending = host([{ stdout: 'none\n' }, { stdout: OLD }, { code: 76, stdout: '1796065842 60\n' }]);
    await expect(m.apply(pending, P, withChanges(await checked(pending)))).rejects.toThrow(/still pending on this host \(it fires by \d\d:\d\d:\d\d\): nothing was changed/);
    const user = host([{ stdout: 'none\n' }, { stdout: OLD }, { code: 77 }]);
    await expect(m.apply(user, P, withChanges(await checked(user)))).rejects.toThrow(/needs a root session \(become: sudo\): nothing was changed/);
    expect([...pending.puts, ...user.puts]).toEqual([]);
  });

  describe('the session is lost too', () => {
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'Date'] });
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('the host timer rolls back; the task waits for it, probes again and says what happened', async () => {
      // Commands: state, probe, arm, activate (lost: the new ruleset cut the session too).
      const h = host([{ stdout: 'none\n' }, { stdout: OLD }, {}], { probes: [OK], lostAt: 4 });
      const c = await checked(h);
      const t0 = Date.now();
      const done = m.apply(h, P, withChanges(c)).catch((e: Error) => e);
      await vi.advanceTimersByTimeAsync(33_000);
      const e = await done;
      expect(e).toBeInstanceOf(Error);
      expect((e as Error).message).toMatch(
        /^`systemctl reload nftables` did not answer \(connection lost: state unknown\); the session was lost too: the host's own timer rolled back at \d\d:\d\d:\d\d \(rolled back to the previous \/etc\/x\.nft\); a new connection works again$/,
      );
      // It waited for the timer (armed + within + 2 s) before probing.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(32_000);
    });
  });
});
