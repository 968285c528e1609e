/**
 * The session protocol against a real local session loop (the same code drives the ssh exec channel).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnChannel } from '../../../src/transport/local-channel.js';
import { SESSION_SCRIPT, sessionArgv } from '../../../src/transport/session-script.js';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from '../../../src/transport/session.js';
import { emptyCounters, HostRefused, HostUnreachable } from '../../../src/transport/types.js';
import { LOCK_HELD } from '../../../src/transport/lock.js';

const counters = emptyCounters();
let session: Session;

beforeAll(async () => {
  session = await Session.start(spawnChannel(sessionArgv(false, false)), { host: 'local', counters });
});
afterAll(async () => {
  await session?.close();
});

const binary = Buffer.from([0, 1, 2, 255, 10, 13, 0, 0, 0x80, 0x0a]);
const mega = randomBytes(1024 * 1024);

describe('session protocol (local perl)', () => {
  const cases: {
    name: string;
    cmd: string;
    stdin?: string | Buffer;
    timeoutMs?: number;
    code: number;
    stdout?: string | Buffer;
    stderr?: string;
  }[] = [
    { name: 'plain output', cmd: 'echo hello', code: 0, stdout: 'hello\n', stderr: '' },
    { name: 'exit code and stderr', cmd: 'echo oops >&2; exit 7', code: 7, stdout: '', stderr: 'oops\n' },
    { name: 'exit 3 ends only the child', cmd: 'exit 3', code: 3, stdout: '' },
    { name: 'stdin round trip', cmd: 'cat', stdin: 'abc\ndef', code: 0, stdout: 'abc\ndef' },
    { name: 'binary stdin/stdout with NULs', cmd: 'cat', stdin: binary, code: 0, stdout: binary },
    { name: 'binary output from printf', cmd: "printf 'a\\000b\\377'", code: 0, stdout: Buffer.from([0x61, 0, 0x62, 0xff]) },
    { name: '1 MB stdin → stdout', cmd: 'cat', stdin: mega, code: 0, stdout: mega },
    { name: 'stdin not read by the command', cmd: 'echo ignored', stdin: mega, code: 0, stdout: 'ignored\n' },
    { name: 'no stdin: reads EOF, not the protocol', cmd: 'cat; echo done', code: 0, stdout: 'done\n' },
    { name: 'command ending in newlines', cmd: 'echo a\n\n\n', code: 0, stdout: 'a\n' },
    { name: 'unicode', cmd: "printf '%s' 'héllo ✓'", code: 0, stdout: 'héllo ✓' },
    { name: 'timeout kills with 124', cmd: 'sleep 5', timeoutMs: 300, code: 124 },
    { name: 'lock fd not inherited', cmd: '[ -e /proc/self/fd/9 ] && echo open || echo closed', code: 0, stdout: 'closed\n' },
    { name: 'trailing output without newline', cmd: 'printf x', code: 0, stdout: 'x' },
    { name: 'backslashes, tabs and leading spaces survive', cmd: "  printf '%s' '\\t\tx  '", code: 0, stdout: '\\t\tx  ' },
    { name: 'multi-line script', cmd: 'a=1\nb=2\necho $((a + b))', code: 0, stdout: '3\n' },
    { name: 'large command (10 KB)', cmd: `echo ${'y'.repeat(10_000)} | wc -c`, code: 0, stdout: '10001\n' },
    { name: 'multi-line command just over 1 KB', cmd: `a=${'z'.repeat(1020)}\necho \${#a}`, code: 0, stdout: '1020\n' },
    { name: 'the session user\'s uid is exported (no id -u per script)', cmd: 'echo "$INFRA_UID"', code: 0, stdout: `${process.getuid!()}\n` },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const t0 = Date.now();
      const r = await session.run(c.cmd, { stdin: c.stdin, timeoutMs: c.timeoutMs });
      expect(r.code).toBe(c.code);
      if (Buffer.isBuffer(c.stdout)) expect(r.stdoutBytes.equals(c.stdout)).toBe(true);
      else if (c.stdout !== undefined) expect(r.stdout).toBe(c.stdout);
      if (c.stderr !== undefined) expect(r.stderr).toBe(c.stderr);
      if (c.timeoutMs) expect(Date.now() - t0).toBeLessThan(3000);
    });
  }

  it('a command that ignores the timeout\'s TERM is killed 5 s later (137), its whole process group with it', async () => {
    const t0 = Date.now();
    const r = await session.run(`trap '' TERM; sleep 30 & echo $! > ${JSON.stringify(join(tmpdir(), 'infra-kill-test.pid'))}; wait`, { timeoutMs: 200 });
    expect(r.code).toBe(137);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(5000);
    const pid = Number(readFileSync(join(tmpdir(), 'infra-kill-test.pid'), 'utf8'));
    // Gone, or a zombie its new parent has yet to reap: not running either way.
    const state = () => (existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] : 'gone');
    expect(['gone', 'Z', 'X']).toContain(state());
    rmSync(join(tmpdir(), 'infra-kill-test.pid'));
  }, 15_000);

  it('the command\'s start time is exported (no date per script)', async () => {
    const now = Number((await session.run('echo "$INFRA_NOW"')).stdout);
    expect(Math.abs(now - Date.now() / 1000)).toBeLessThan(2);
  });

  it('pipelines concurrent commands and answers each in order', async () => {
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => session.run(`echo ${i}`, { stdin: String(i) })));
    expect(rs.map((r) => r.stdout)).toEqual(Array.from({ length: 50 }, (_, i) => `${i}\n`));
  });

  it('the run lock: held by the session, not inherited by commands, refused to a second session with the holder, free once the session ends', async () => {
    // A user's lock (root's is /run/infra/lock, this machine's own): as nobody when run by root.
    const root = process.getuid!() === 0;
    const uid = root ? 65534 : process.getuid!();
    const runtime = mkdtempSync(join(tmpdir(), 'infra-lock-'));
    chmodSync(runtime, 0o777);
    const asUser = root ? ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'] : [];
    const start = () => Session.start(spawnChannel([...asUser, 'env', `XDG_RUNTIME_DIR=${runtime}`, ...sessionArgv(false, false)]), { host: 'h', counters: emptyCounters() });
    const [a, b] = [await start(), await start()];
    try {
      expect(await a.takeLock(0, '{"user":"a"}\n')).toMatchObject({ code: 0 });
      const file = join(runtime, `infra-${uid}.lock`);
      expect(statSync(`${file}.json`).mode & 0o777).toBe(0o600);
      expect((await a.run(`ls -l /proc/$$/fd | grep -c ${JSON.stringify(file)} || true`)).stdout).toBe('0\n');
      const t0 = Date.now();
      expect(await b.takeLock(1000, '{"user":"b"}\n')).toMatchObject({ code: LOCK_HELD, stdout: '{"user":"a"}\n' });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      await a.close();
      expect(await b.takeLock(0, '{"user":"b"}\n')).toMatchObject({ code: 0 });
      expect(readFileSync(`${file}.json`, 'utf8')).toBe('{"user":"b"}\n');
    } finally {
      await a.close();
      await b.close();
      rmSync(runtime, { recursive: true, force: true });
    }
  });

  it('1,000 commands in a row (prints ms/command)', async () => {
    const n = 1000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const r = await session.run('true');
      if (r.code !== 0) throw new Error(`command ${i} failed`);
    }
    const ms = (performance.now() - t0) / n;
    console.log(`local session: ${ms.toFixed(2)} ms/command over ${n} sequential \`true\``);
    expect(ms).toBeLessThan(50);
  }, 120_000);

  it('200 commands with output (prints ms/command)', async () => {
    const n = 200;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) expect((await session.run(`echo ${i}`)).stdout).toBe(`${i}\n`);
    console.log(`local session: ${((performance.now() - t0) / n).toFixed(2)} ms/command with output`);
  }, 60_000);

  it('counts commands and bytes', () => {
    expect(counters.commands).toBeGreaterThan(1000);
    expect(counters.bytesSent).toBeGreaterThan(2 * 1024 * 1024);
    expect(counters.bytesReceived).toBeGreaterThan(1024 * 1024);
  });
});

describe('session protocol under faults (local perl)', () => {
  it('a background process that keeps writing breaks neither the framing nor the next outputs', async () => {
    const s = await Session.start(spawnChannel(sessionArgv(false, false)), { host: 'h', counters: emptyCounters() });
    try {
      // It inherits the command's stdout and stderr and never stops writing to them.
      const started = await s.run('(while :; do echo spam; echo spam >&2; done) & echo "pid=$!"');
      const pid = /pid=(\d+)/.exec(started.stdout)?.[1];
      expect(pid).toBeDefined();
      for (let i = 0; i < 100; i++) {
        const r = await s.run(`echo ${i}; echo err${i} >&2`);
        expect([r.code, r.stdout, r.stderr]).toEqual([0, `${i}\n`, `err${i}\n`]);
      }
      await s.run(`kill ${pid}`);
      expect((await s.run('echo still here')).stdout).toBe('still here\n');
    } finally {
      await s.close();
    }
  });

  it('a background process that writes only later never shows up in another command\'s output', async () => {
    const s = await Session.start(spawnChannel(sessionArgv(false, false)), { host: 'h', counters: emptyCounters() });
    try {
      expect((await s.run('(sleep 0.3; echo late; echo late >&2) & echo started')).stdout).toBe('started\n');
      const t0 = Date.now();
      for (let i = 0; Date.now() - t0 < 800; i++) {
        const r = await s.run(`echo ${i}`);
        expect([r.stdout, r.stderr]).toEqual([`${i}\n`, '']);
      }
    } finally {
      await s.close();
    }
  });

  it('a task that removes the session directory (cleaning /tmp) does not end the session', async () => {
    const s = await Session.start(spawnChannel(sessionArgv(false, false)), { host: 'h', counters: emptyCounters() });
    try {
      // The child runs the session's command file: $0 is inside the session directory.
      const gone = await s.run('d=$(dirname "$0"); rm -rf "$d"; test -e "$d" || echo removed');
      expect(gone).toMatchObject({ code: 0, stdout: 'removed\n' });
      expect(await s.run('echo next', { stdin: 'input' })).toMatchObject({ code: 0, stdout: 'next\n' });
      expect((await s.run('cat', { stdin: 'piped' })).stdout).toBe('piped');
      const other = await s.run('dirname "$0"');
      expect(other.stdout).toMatch(/infra-session\./);
      expect((await s.run(`test -d ${JSON.stringify(other.stdout.trim())} && echo new dir`)).stdout).toBe('new dir\n');
    } finally {
      await s.close();
    }
  });

  it('input cut short (the stream ended mid-frame) is reported, and the command does not run on half its input', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'infra-cut-'));
    const marker = join(dir, 'ran');
    const cmd = `cat > ${marker}\n`;
    // Raw protocol: the frame announces 100 bytes of stdin, 10 arrive, then the stream ends.
    const out = execFileSync('perl', ['-e', SESSION_SCRIPT], { input: `1 ${cmd.length} 100 5.000 c\n${cmd}0123456789` }).toString();
    expect(out).toMatch(/__INFRA_READY__ \d+\n1 !input\n0\n0\n$/);
    expect(existsSync(marker)).toBe(false);
  });

  it('output over maxOutputBytes keeps the tail and says how much was dropped', async () => {
    const r = await session.run('seq 1 400000', { maxOutputBytes: 100_000 });
    const total = Array.from({ length: 400000 }, (_, i) => `${i + 1}\n`).join('').length;
    expect(r.code).toBe(0);
    expect(r.dropped).toEqual({ stdout: total - 100_000, stderr: 0 });
    expect(r.stdoutBytes.length).toBe(100_000);
    expect(r.stdoutBytes.toString().endsWith('399999\n400000\n')).toBe(true);
    expect(r.stdout).toMatch(new RegExp(`^\\[infra: ${total - 100_000} bytes of output dropped, the last 100000 follow\\]\n`));
    expect((await session.run('echo small')).dropped).toBeUndefined();
  });

  it.each([0, -1, 25 * 3_600_000, 600 * 3_600_000])('a timeout of %d ms is refused before anything runs', async (timeoutMs) => {
    await expect(session.run('touch /nonexistent/never', { timeoutMs })).rejects.toThrow(/command timeout .* is out of range/);
    expect((await session.run('echo ok')).stdout).toBe('ok\n');
  });

  it('the longest timeout arms a controller timer Node can hold (no overflow)', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      expect((await session.run('echo ok', { timeoutMs: 24 * 3_600_000 })).stdout).toBe('ok\n');
      await new Promise((r) => setTimeout(r, 50));
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('session failures', () => {
  it('a killed shell rejects pending commands as connection lost', async () => {
    const s = await Session.start(spawnChannel(sessionArgv(false, false)), { host: 'h', counters: emptyCounters() });
    const pending = s.run('sleep 10');
    const second = s.run('echo queued');
    await new Promise((r) => setTimeout(r, 100));
    s.destroy();
    await expect(pending).rejects.toThrow(HostUnreachable);
    await expect(second).rejects.toThrow('connection lost: state unknown');
    await expect(s.run('echo after')).rejects.toThrow(HostUnreachable);
  });

  it('a lost SIGCHLD (here: blocked for the whole session) costs a slice of waiting, not the command\'s timeout', async () => {
    // The real loss is a race (the signal lands between waitpid and select); blocking the signal loses every one.
    const blocked = ['perl', '-MPOSIX', '-e', 'sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGCHLD)) or die; exec @ARGV'];
    const s = await Session.start(spawnChannel([...blocked, ...sessionArgv(false, false)]), { host: 'h', counters: emptyCounters() });
    try {
      const t0 = Date.now();
      for (let i = 0; i < 5; i++) expect((await s.run(`echo ${i}`, { timeoutMs: 30_000 })).stdout).toBe(`${i}\n`);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect((await s.run('sleep 5', { timeoutMs: 300 })).code).toBe(124);
    } finally {
      await s.close();
    }
  });

  it('a shell that never gets ready fails within the ready timeout', async () => {
    const t0 = Date.now();
    const ch = spawnChannel(['sh', '-c', 'sleep 30']);
    await expect(
      Session.start(ch, { host: 'h', counters: emptyCounters(), readyTimeoutMs: 500 }),
    ).rejects.toThrow(/not ready after 500 ms/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('a shell that exits before ready is refused with its stderr', async () => {
    const ch = spawnChannel(['sh', '-c', 'echo "sudo: a password is required" >&2; exit 1']);
    const err = await Session.start(ch, { host: 'h', counters: emptyCounters() }).catch((e) => e);
    expect(err).toBeInstanceOf(HostRefused);
    expect(err.message).toContain('a password is required');
  });

  it('answers a sudo-style prompt once and refuses on a second prompt', async () => {
    // A fake "sudo": prompts on stderr, reads a line, accepts only "right", then runs the session.
    // (It reads the line byte by byte, as sudo does: nothing of the protocol is taken.)
    const fake = (): string[] => [
      'sh',
      '-c',
      `for i in 1 2 3; do printf __INFRA_SUDO_PASSWORD__ >&2; read -r pw; [ "$pw" = right ] && exec "$@"; sleep 0.2; done; exit 1`,
      'fake-sudo',
      ...sessionArgv(false, false),
    ];
    const ok = await Session.start(spawnChannel(fake()), { host: 'h', counters: emptyCounters(), becomePassword: 'right' });
    expect((await ok.run('echo in')).stdout).toBe('in\n');
    await ok.close();
    const t0 = Date.now();
    const bad = Session.start(spawnChannel(fake()), { host: 'h', counters: emptyCounters(), becomePassword: 'wrong' });
    await expect(bad).rejects.toThrow(/sudo rejected the become password/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});
