/**
 * `lab up | status | down` for real, on a small lab of its own (own inventory, network,
 * subnet, names and labels) so that it never touches a lab someone is using.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { docker } from '../../src/lab/docker.js';
import { labDown, labStatus, labUp } from '../../src/lab/lab.js';
import { defaultLabOptions, type LabOptions } from '../../src/lab/options.js';
import { ensureDockerAnswers, ensureImage } from '../../src/lab/preflight.js';
import { SSH, NO_SSH_CLIENT } from './helpers/ssh-client.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

function ssh(dir: string, port: number, target: string, cmd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const common = [
    '-F', '/dev/null',
    '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-i', join(dir, 'id_ed25519'),
  ];
  const proxy = [SSH, ...common, '-p', String(port), '-W', '%h:%p', 'admin@127.0.0.1'].join(' ');
  return new Promise((resolve) => {
    execFile(SSH, [...common, '-o', `ProxyCommand=${proxy}`, `admin@${target}`, cmd], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

describe('infra lab', () => {
  let o: LabOptions;
  let port: number;
  const octet = 100 + (process.pid % 150);
  const net = `10.214.${octet}`;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'infra-labtest-'));
    port = await freePort();
    await writeFile(
      join(dir, 'hosts.yaml'),
      [
        'hosts:',
        `  bastion: { address: 127.0.0.1, port: ${port}, bastion: null, groups: [bastion], vars: { private_address: ${net}.2 } }`,
        `  web1: { address: ${net}.11, groups: [web] }`,
        'groups:',
        '  all: { user: admin, key: ./id_ed25519, bastion: bastion, become: sudo }',
        '',
      ].join('\n'),
    );
    const tag = `test-${process.pid}`;
    o = {
      ...defaultLabOptions(),
      inventoryDir: dir,
      network: `infra-labtest-${process.pid}`,
      subnet: `${net}.0/24`,
      namePrefix: `infra-labtest-${process.pid}-`,
      // infra-test labels: test/image/remove-leftovers.sh cleans up after a crashed run.
      labels: { 'infra-lab': tag, 'infra-test': '1', 'infra-test.pid': String(process.pid) },
    };
  });
  afterAll(async () => {
    if (!o) return;
    await labDown(o).catch(() => {});
    await rm(o.inventoryDir, { recursive: true, force: true });
  });

  it('up starts every host, installs the key and writes known_hosts', async () => {
    const t0 = performance.now();
    const status = await labUp(o);
    console.log(`labUp (2 hosts) took ${Math.round(performance.now() - t0)} ms`);
    expect(status).toEqual([
      { name: 'bastion', address: `127.0.0.1:${port}`, state: 'running' },
      { name: 'web1', address: `${net}.11`, state: 'running' },
    ]);
    const known = (await readFile(join(o.inventoryDir, 'known_hosts'), 'utf8')).trim().split('\n');
    expect(known.map((l) => l.split(' ')[0])).toEqual([`[127.0.0.1]:${port}`, `${net}.11`]);
    expect((await readFile(join(o.inventoryDir, 'id_ed25519.pub'), 'utf8'))).toMatch(/^ssh-ed25519 /);
  }, 120_000);

  it('ssh (the system client) reaches a host through the bastion with the lab key, and it has sudo', async (ctx) => {
    if (NO_SSH_CLIENT) ctx.skip(NO_SSH_CLIENT);
    const r = await ssh(o.inventoryDir, port, `${net}.11`, 'hostname && sudo -n true && systemctl is-system-running');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('web1\nrunning\n');
  }, 60_000);

  it('a second up leaves running hosts alone and restarts a stopped one', async () => {
    const ids = async (): Promise<string[]> =>
      (await docker(['ps', '-aq', '--no-trunc', '--filter', `label=infra-lab=${o.labels['infra-lab']}`])).trim().split('\n').sort();
    const before = await ids();
    await docker(['kill', `${o.namePrefix}web1`]);
    expect((await labStatus(o)).find((h) => h.name === 'web1')?.state).toBe('exited');
    const status = await labUp(o);
    expect(status.map((h) => h.state)).toEqual(['running', 'running']);
    expect(await ids()).toEqual(before);
    expect((await docker(['exec', `${o.namePrefix}web1`, 'systemctl', 'is-active', 'ssh'])).trim()).toBe('active');
  }, 120_000);

  it('down removes its containers and network, and only those', async () => {
    const removed = await labDown(o);
    expect(removed.sort()).toEqual([`${o.namePrefix}bastion`, `${o.namePrefix}web1`]);
    expect((await labStatus(o)).map((h) => h.state)).toEqual(['missing', 'missing']);
    expect((await docker(['network', 'ls', '-q', '--filter', `name=^${o.network}$`])).trim()).toBe('');
    expect(existsSync(join(o.inventoryDir, 'known_hosts'))).toBe(false);
  }, 60_000);

  it('says how to start docker when the daemon does not answer', async () => {
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
    try {
      const err = await ensureDockerAnswers().catch((e) => e);
      expect(err).toBeInstanceOf(UserError);
      expect(err.format()).toMatch(/daemon does not answer[\s\S]*hint: start it with: .*ensure-docker\.sh/);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });

  it('builds a missing image with the build script, and says how to see why when it fails', async () => {
    const lines: string[] = [];
    const err = await ensureImage('infra-test-no-such-image:none', '/nonexistent/build.sh', (l) => lines.push(l)).catch((e) => e);
    expect(lines).toEqual(['lab: image infra-test-no-such-image:none is missing; building it (about 2 minutes)']);
    expect(err).toBeInstanceOf(UserError);
    expect(err.format()).toMatch(/building the test image failed \(exit 127\)[\s\S]*hint: run it yourself/);
    // A present image is left alone: the build script is not even run.
    await expect(ensureImage(o.image, '/nonexistent/build.sh', (l) => lines.push(l))).resolves.toBeUndefined();
    expect(lines).toHaveLength(1);
  });
});
