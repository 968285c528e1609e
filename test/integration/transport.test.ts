/**
 * The ssh transport against a real fleet: a bastion (sshd on 127.0.0.1) and three targets
 * reachable only through it, every sshd with `MaxSessions 2`. One fleet for the whole file;
 * the test that kills a target runs last.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/inventory/load.js';
import type { ConnectionSettings, HostSpec, Inventory } from '../../src/inventory/types.js';
import { Secret } from '../../src/secrets/secret.js';
import { HostLocked, HostRefused, HostUnreachable, TransportPool, type TransportOptions } from '../../src/transport/index.js';
import { startFleet, type Fleet } from './fleet.js';

let fleet: Fleet;
const pools: TransportPool[] = [];
const TARGETS = ['target1', 'target2', 'target3'];

beforeAll(async () => {
  fleet = await startFleet({ targets: 3, sshdConfig: 'MaxSessions 2' });
  loaded = await loadInventory(fleet.inventoryDir);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled(pools.map((p) => p.closeAll()));
  await fleet?.down();
}, 60_000);

type HostOverride = Partial<ConnectionSettings> & { name?: string };
let loaded: Inventory;

/** The fleet's inventory (loaded from its hosts.yaml), with another known_hosts and extra hosts. */
function inventory(knownHostsPath = loaded.knownHostsPath, extra: Record<string, HostOverride> = {}): Inventory {
  const hosts = new Map<string, HostSpec>(loaded.hosts);
  for (const [name, o] of Object.entries(extra)) {
    const like = hosts.get(o.name ?? 'target1')!;
    hosts.set(name, { ...like, name, conn: { ...like.conn, ...o } });
  }
  return { ...loaded, hosts, knownHostsPath };
}

function pool(inv = inventory(), opts: Partial<TransportOptions> = {}): TransportPool {
  const p = new TransportPool(inv, { knownHostsPath: inv.knownHostsPath, ...opts });
  pools.push(p);
  return p;
}

/** A copy of known_hosts with `edit` applied to its lines. */
async function knownHostsCopy(edit: (lines: string[]) => string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'infra-kh-'));
  const lines = (await readFile(join(fleet.inventoryDir, 'known_hosts'), 'utf8')).split('\n').filter(Boolean);
  const path = join(dir, 'known_hosts');
  await writeFile(path, edit(lines).join('\n') + '\n');
  return path;
}

const ipOf = (name: string): string => fleet.targets.find((t) => t.name === name)!.ip;

describe('ssh transport', () => {
  it('reaches every target through ONE bastion connection, as root via sudo, with MaxSessions 2', async () => {
    const p = pool();
    const results = await Promise.all(
      TARGETS.map(async (name) => {
        const t = p.get(name);
        const [host, uid, conn] = await Promise.all([
          t.run('hostname'),
          t.run('id -u'),
          t.run("ss -Htn state established '( sport = :22 )'"),
        ]);
        // Peer address of the one ssh connection the target has.
        const peers = conn.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).at(-1)!.replace(/:\d+$/, ''));
        return { name, host: host.stdout.trim(), uid: uid.stdout.trim(), peers };
      }),
    );
    for (const r of results) {
      expect(r.host).toBe(r.name);
      expect(r.uid).toBe('0');
      // The only ssh client the target sees is the bastion's private address.
      expect(r.peers).toEqual([fleet.bastion.ip]);
    }
    // The bastion's own session shares nothing with the hub but works alongside it.
    expect((await p.get('bastion').run('hostname')).stdout.trim()).toBe('bastion');
    const c = p.counters();
    for (const name of TARGETS) expect(c[name]).toMatchObject({ connections: 1, channels: 2, commands: 3 });
    // bastion: its own connection + the shared hub (one connection, 3 forwarded channels).
    expect(c.bastion.connections).toBe(2);
    expect(c.bastion.channels).toBe(1 + 3);
    await p.closeAll();
  });

  it('a bastion given as "user@address:port" works; a bastion that is down fails its hosts fast', async () => {
    const spec = `admin@127.0.0.1:${fleet.bastion.port}`;
    const p = pool(inventory(undefined, { viaSpec: { name: 'target2', bastion: spec } }));
    expect((await p.get('viaSpec').run('hostname')).stdout.trim()).toBe('target2');
    expect(p.counters()[spec]).toMatchObject({ connections: 1, channels: 1 });
    await p.closeAll();

    const down = pool(inventory(undefined, { bastion: { name: 'bastion', port: 1 } }));
    const t0 = Date.now();
    const errs = await Promise.all(['target1', 'target2'].map((h) => down.get(h).connect().catch((e) => e)));
    for (const e of errs) {
      expect(e).toBeInstanceOf(HostUnreachable);
      expect(e.message).toMatch(/^bastion bastion: cannot reach 127\.0\.0\.1:1: .*ECONNREFUSED/);
    }
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('runs 1,000 commands over one session (prints ms/command and connect time)', async () => {
    const p = pool();
    const t = p.get('target1');
    const c0 = Date.now();
    await t.connect();
    const connectMs = Date.now() - c0;
    const n = 1000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const r = await t.run('true');
      if (r.code !== 0) throw new Error(`command ${i}: ${r.stderr}`);
    }
    const perTrue = (performance.now() - t0) / n;
    const t1 = performance.now();
    for (let i = 0; i < 200; i++) expect((await t.run(`echo ${i}`)).stdout).toBe(`${i}\n`);
    const perEcho = (performance.now() - t1) / 200;
    const counters = p.counters();
    console.log(
      `ssh via bastion: connect ${connectMs} ms (bastion hub ${counters.bastion.connectMs} ms incl.), ` +
        `${perTrue.toFixed(2)} ms/command (true, ${n}x), ${perEcho.toFixed(2)} ms/command with output; ` +
        `counters ${JSON.stringify(counters.target1)}`,
    );
    expect(counters.target1).toMatchObject({ connections: 1, channels: 2, commands: n + 200 });
    expect(perTrue).toBeLessThan(50);
    await p.closeAll();
  }, 180_000);

  it('put/get over ssh: validate failure keeps the old file, mode/owner applied, missing → null', async () => {
    const p = pool();
    const t = p.get('target2');
    await t.put('/etc/infra-test.conf', 'v1\n', { mode: '0640', owner: 'root', group: 'adm' });
    expect((await fleet.exec('target2', 'stat -c "%a %U %G" /etc/infra-test.conf')).stdout.trim()).toBe('640 root adm');
    await expect(t.put('/etc/infra-test.conf', 'v2\n', { validate: 'grep -q v1 %s' })).rejects.toThrow(/validate failed/);
    expect((await t.get('/etc/infra-test.conf'))?.toString()).toBe('v1\n');
    expect(await t.get('/etc/does-not-exist')).toBeNull();
    expect((await fleet.exec('target2', 'ls -a /etc | grep -c infra- || true')).stdout.trim()).toBe('1');
    await p.closeAll();
  });

  it('refuses an unknown host key with its fingerprint and the command to accept it; --accept-new records it', async () => {
    const ip = ipOf('target2');
    const kh = await knownHostsCopy((ls) => ls.filter((l) => !l.startsWith(`${ip} `)));
    const err = await pool(inventory(kh)).get('target2').connect().catch((e) => e);
    expect(err).toBeInstanceOf(HostRefused);
    expect(err.message).toMatch(/unknown host key for 10\.[\d.]+: ssh-ed25519 key SHA256:[A-Za-z0-9+/]{43}/);
    expect(err.message).toContain(`infra apply -i ${fleet.inventoryDir} --accept-new`);

    await pool(inventory(kh), { acceptNew: true }).get('target2').run('true');
    const recorded = (await readFile(kh, 'utf8')).split('\n').find((l) => l.startsWith(`${ip} `));
    expect(recorded).toBe(await fleet.hostKeyLine('target2'));
    // And now strict mode accepts it.
    expect((await pool(inventory(kh)).get('target2').run('hostname')).stdout.trim()).toBe('target2');
  });

  it('a changed target key is fatal before authentication, even with --accept-new', async () => {
    const ip = ipOf('target1');
    const otherKey = (await fleet.hostKeyLine('target2')).split(' ').slice(1).join(' ');
    const kh = await knownHostsCopy((ls) => ls.map((l) => (l.startsWith(`${ip} `) ? `${ip} ${otherKey}` : l)));
    const accepted = async (): Promise<number> =>
      Number((await fleet.exec('target1', 'journalctl -u ssh --no-pager | grep -c "Accepted publickey" || true')).stdout.trim());
    const before = await accepted();
    for (const acceptNew of [false, true]) {
      const err = await pool(inventory(kh), { acceptNew }).get('target1').connect().catch((e) => e);
      expect(err).toBeInstanceOf(HostRefused);
      expect(err.message).toMatch(/HOST KEY CHANGED for 10\.[\d.]+/);
    }
    expect(await accepted()).toBe(before);
    // known_hosts was not touched.
    expect(await readFile(kh, 'utf8')).toContain(`${ip} ${otherKey}`);
  });

  it('a changed bastion key is fatal for the bastion and every host behind it', async () => {
    const otherKey = (await fleet.hostKeyLine('target2')).split(' ').slice(1).join(' ');
    const kh = await knownHostsCopy((ls) =>
      ls.map((l) => (l.startsWith(`[127.0.0.1]:${fleet.bastion.port} `) ? `[127.0.0.1]:${fleet.bastion.port} ${otherKey}` : l)),
    );
    const p = pool(inventory(kh), { acceptNew: true });
    const errs = await Promise.all(['bastion', 'target1', 'target3'].map((h) => p.get(h).connect().catch((e) => e)));
    for (const e of errs) {
      expect(e).toBeInstanceOf(HostRefused);
      expect(e.message).toMatch(/HOST KEY CHANGED for \[127\.0\.0\.1\]/);
    }
    expect(errs[1].message).toMatch(/^bastion bastion: /);
  });

  it('become with a password: a wrong one fails within 10 s, the right one works', async () => {
    const setup = [
      'id pwuser >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo pwuser',
      "echo 'pwuser:Right-Pw-42' | chpasswd",
      'install -d -m 0700 -o pwuser -g pwuser /home/pwuser/.ssh',
      'install -m 0600 -o pwuser -g pwuser /home/admin/.ssh/authorized_keys /home/pwuser/.ssh/authorized_keys',
      'sudo -l -U pwuser | grep -q "(ALL : ALL) ALL"',
    ].join(' && ');
    expect(await fleet.exec('target3', setup)).toMatchObject({ code: 0 });
    const inv = inventory(undefined, {
      wrong: { name: 'target3', user: 'pwuser', becomePassword: new Secret('Wrong-Pw-13') },
      right: { name: 'target3', user: 'pwuser', becomePassword: new Secret('Right-Pw-42') },
      nopw: { name: 'target3', user: 'pwuser' },
    });
    const p = pool(inv);
    const t0 = Date.now();
    const err = await p.get('wrong').connect().catch((e) => e);
    const ms = Date.now() - t0;
    expect(err).toBeInstanceOf(HostRefused);
    expect(err.message).toBe('sudo rejected the become password');
    expect(ms).toBeLessThan(10_000);
    console.log(`wrong sudo password detected in ${ms} ms`);

    const nopw = await p.get('nopw').connect().catch((e) => e);
    expect(nopw).toBeInstanceOf(HostRefused);
    expect(nopw.message).toMatch(/a password is required/);

    const right = p.get('right');
    expect((await right.run('id -un')).stdout.trim()).toBe('root');
    expect((await right.run('cat', { stdin: 'after sudo\n' })).stdout).toBe('after sudo\n');
    await p.closeAll();
  });

  it('lock: a second runner gets the holder in the message; the lock dies with the holder', async () => {
    const inv = inventory();
    // The holder is another controller process, killed with SIGKILL like a crashed run.
    const holder = await startLockHolder(inv, 'target2');
    try {
      const p = pool(inv);
      const meta = { user: 'bob', controller: 'ci', runId: 'b0b', command: 'infra apply', since: new Date().toISOString() };
      const err = await p.get('target2').lock(meta).catch((e) => e);
      expect(err).toBeInstanceOf(HostLocked);
      expect(err.message).toMatch(/^target2 is locked by alice@laptop since \d\d:\d\d:\d\d \(run 7f3c, infra apply\)$/);
      // Commands still run while another runner holds the lock (plan/check take none).
      expect((await p.get('target2').run('echo ok')).stdout).toBe('ok\n');

      holder.kill('SIGKILL');
      const t0 = Date.now();
      await p.get('target2').lock(meta, 20_000);
      console.log(`lock released ${Date.now() - t0} ms after the holder was killed`);
      const json = JSON.parse((await fleet.exec('target2', 'cat /run/infra/lock.json')).stdout);
      expect(json).toMatchObject({ user: 'bob', runId: 'b0b' });
      // Child commands do not hold the lock fd.
      expect((await p.get('target2').run('ls -l /proc/self/fd/ | grep -c /run/infra/lock || true')).stdout.trim()).toBe('0');
      await p.closeAll();
    } finally {
      holder.kill('SIGKILL');
    }
  }, 60_000);

  it('a target stopped mid-command is unreachable ("connection lost: state unknown"); others go on', async () => {
    const p = pool(inventory(), { keepaliveIntervalMs: 1000, keepaliveCountMax: 3 });
    const dying = p.get('target3');
    const living = p.get('target1');
    await Promise.all([dying.connect(), living.connect()]);
    const pending = dying.run('sleep 120').catch((e) => e);
    let ok = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        expect((await living.run('echo alive')).stdout).toBe('alive\n');
        ok++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    await fleet.stop('target3');
    const err = await pending;
    const ms = Date.now() - t0;
    const okAtLoss = ok;
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await loop;
    expect(err).toBeInstanceOf(HostUnreachable);
    expect(err.message).toBe('connection lost: state unknown');
    expect(ms).toBeLessThan(15_000);
    expect(ok).toBeGreaterThan(okAtLoss);
    await expect(dying.run('true')).rejects.toThrow(HostUnreachable);
    console.log(`lost target detected after ${ms} ms; ${ok} commands ran on target1 meanwhile`);
    await p.closeAll();
  }, 60_000);
});

/** Spawns a node process (with tsx) whose TransportPool takes the lock on `host`, then waits. */
async function startLockHolder(inv: Inventory, host: string): Promise<ReturnType<typeof spawn>> {
  const dir = await mkdtemp(join(tmpdir(), 'infra-lock-holder-'));
  const src = (f: string): string => JSON.stringify(fileURLToPath(new URL(`../../src/${f}`, import.meta.url)));
  const script = join(dir, 'hold.mts');
  await writeFile(
    script,
    `import { TransportPool } from ${src('transport/index.ts')};
import { loadInventory } from ${src('inventory/load.ts')};
const inv = await loadInventory(${JSON.stringify(inv.dir)});
const p = new TransportPool(inv, { knownHostsPath: ${JSON.stringify(inv.knownHostsPath)} });
await p.get(${JSON.stringify(host)}).lock({ user: 'alice', controller: 'laptop', runId: '7f3c', command: 'infra apply', since: new Date().toISOString() });
console.log('LOCKED');
setInterval(() => {}, 1000);
`,
  );
  const root = fileURLToPath(new URL('../..', import.meta.url));
  // node itself (not the tsx wrapper, which forks): SIGKILL must hit the process holding the lock.
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`lock holder did not lock in 30 s: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('LOCKED')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`lock holder exited ${code}: ${err}`)));
  });
  return child;
}
