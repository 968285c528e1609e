/**
 * The session protocol under faults on a real Debian 12 host (issue 10, items 8, 11–13): a
 * full temp dir, a task that cleans /tmp, a background writer, 600 MB of output, and the run
 * lock's metadata on the host. The session is the product's own (ShellTransport over
 * `docker exec`, the channel an SSH exec would otherwise be).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerSecretValue } from '../../src/secrets/secret.js';
import { SessionFileError } from '../../src/transport/types.js';
import { DockerExecTransport, startDockerHost, type DockerHost } from './helpers/docker-host.js';

let h: DockerHost;
const transports: DockerExecTransport[] = [];

beforeAll(async () => {
  h = await startDockerHost();
}, 60_000);
afterAll(async () => {
  await Promise.allSettled(transports.map((t) => t.close()));
  await h?.down();
});

const sh = (cmd: string): Promise<string> => h.sh(cmd);

function transport(env: Record<string, string> = {}): DockerExecTransport {
  const t = new DockerExecTransport(h.container, env);
  transports.push(t);
  return t;
}

describe('a full temp dir', () => {
  it('an 8 KB command is not run at all, a 9.7 KB put fails: distinct errors; the session recovers when space returns', async () => {
    await sh('mkdir -p /small && mount -t tmpfs -o size=64k tmpfs /small');
    const t = transport({ TMPDIR: '/small' });
    expect((await t.run('true')).code).toBe(0);
    // Fill it: what the last command file holds (one page) is all a new command can reuse.
    await sh('dd if=/dev/zero of=/small/fill bs=4k count=64 2>/dev/null || true');
    expect(await sh("df -k /small | tail -1 | awk '{print $4}'")).toBe('0\n');

    const eightKb = `touch /root/first-half\n: ${'#'.repeat(8000)}\ntouch /root/second-half\n`;
    const err = await t.run(eightKb).catch((e) => e);
    expect(err).toBeInstanceOf(SessionFileError);
    expect(err.message).toBe('modtest: the session shell could not store the command in its temp dir (TMPDIR, default /tmp: full or removed?); the command was NOT run');
    expect(await sh('ls /root')).not.toMatch(/half/);

    const put = await t.put('/etc/infra-full.conf', 'x'.repeat(9700)).catch((e) => e);
    expect(put).toBeInstanceOf(SessionFileError);
    expect(put.message).toMatch(/could not store the command's input/);
    expect((await h.exec('test -e /etc/infra-full.conf')).code).toBe(1);

    await sh('rm /small/fill');
    expect((await t.run(eightKb)).code).toBe(0);
    expect(await sh('ls /root')).toBe('first-half\nsecond-half\n');
    await t.put('/etc/infra-full.conf', 'x'.repeat(9700));
    expect(await sh('wc -c < /etc/infra-full.conf')).toBe('9700\n');
    await t.close();
    await sh('umount /small');
  });
});

describe('a task that cleans /tmp, and a background writer', () => {
  it('rm -rf /tmp/* mid-session: the next commands run in a new session dir', async () => {
    const t = transport();
    const before = (await t.run('dirname "$0"')).stdout;
    expect(before).toMatch(/^\/tmp\/infra-session\.\w+\n$/);
    expect((await t.run('rm -rf /tmp/* /tmp/.[!.]*; echo cleaned')).stdout).toBe('cleaned\n');
    expect((await t.run('dirname "$0"')).stdout).not.toBe(before);
    expect((await t.run('cat', { stdin: 'still in sync' })).stdout).toBe('still in sync');
    await t.put('/etc/infra-after-clean.conf', 'ok\n');
    expect(await sh('cat /etc/infra-after-clean.conf')).toBe('ok\n');
    await t.close();
  });

  it('a background process that keeps writing: 50 commands keep exact, clean outputs', async () => {
    const t = transport();
    // Bursts of output every 10 ms (a tight loop is in the unit test; this one spares the CPU).
    const started = await t.run('(while :; do seq 1000; sleep 0.01; done) & echo "pid=$!"');
    const pid = /pid=(\d+)/.exec(started.stdout)?.[1];
    expect(pid).toBeDefined();
    for (let i = 0; i < 50; i++) expect((await t.run(`echo ${i}; echo e${i} >&2`))).toMatchObject({ code: 0, stdout: `${i}\n`, stderr: `e${i}\n` });
    await t.run(`kill ${pid}`);
    await t.close();
  }, 60_000);
});

describe('600 MB of output', () => {
  it('keeps the last 8 MiB, says how much was dropped, and the controller stays small', async () => {
    const t = transport();
    await t.connect();
    global.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const t0 = Date.now();
    try {
      const r = await t.run('yes infra | head -c 600000000; echo done >&2', { timeoutMs: 300_000 });
      expect(r.code).toBe(0);
      expect(r.dropped).toEqual({ stdout: 600_000_000 - 8 * 1024 * 1024, stderr: 0 });
      expect(r.stdoutBytes.length).toBe(8 * 1024 * 1024);
      expect(r.stdout.startsWith(`[infra: ${600_000_000 - 8 * 1024 * 1024} bytes of output dropped, the last 8388608 follow]\n`)).toBe(true);
      expect(r.stderr).toBe('done\n');
      // And the session goes on.
      expect((await t.run('echo next')).stdout).toBe('next\n');
    } finally {
      clearInterval(sampler);
    }
    const growthMb = (peak - base) / 1024 / 1024;
    console.log(`600 MB of output in ${Date.now() - t0} ms; controller RSS ${Math.round(base / 1048576)} MB → peak ${Math.round(peak / 1048576)} MB (+${growthMb.toFixed(0)} MB)`);
    expect(growthMb).toBeLessThan(200);
    await t.close();
  }, 320_000);
});

describe('the run lock on the host', () => {
  it('lock.json is 0600 and its command line is redacted', async () => {
    registerSecretValue('Db-Passw0rd-4242');
    const t = transport();
    await t.lock({ user: 'ops', controller: 'laptop', runId: 'r1', command: 'infra apply -e db_password=Db-Passw0rd-4242', since: new Date().toISOString() });
    expect(await sh('stat -c "%a %U" /run/infra/lock.json')).toBe('600 root\n');
    const json = JSON.parse(await sh('cat /run/infra/lock.json'));
    expect(json).toMatchObject({ user: 'ops', runId: 'r1', command: 'infra apply -e db_password=********' });
    await t.close();
  });
});
