import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatStatus, notRunning } from '../../../src/cli/lab.js';
import { UserError } from '../../../src/errors.js';
import { defaultLabOptions, REPO_ROOT } from '../../../src/lab/options.js';
import { ensureDockerAnswers } from '../../../src/lab/preflight.js';
import { hostKeyFromPub, knownHostsLine } from '../../../src/lab/systemd-host.js';
import { readTopology } from '../../../src/lab/topology.js';

describe('lab topology (inventories/lab/hosts.yaml)', () => {
  it('has the production shape on fixed addresses inside the lab subnet', async () => {
    const o = defaultLabOptions();
    const topo = await readTopology(o.inventoryDir);
    const byName = Object.fromEntries(topo.hosts.map((h) => [h.name, h]));
    expect(Object.keys(byName).sort()).toEqual(
      ['api1', 'api2', 'backup1', 'bastion', 'db1', 'db2', 'lb1', 'lb2', 'mon1', 'redis1', 'redis2'],
    );
    expect(byName.bastion).toEqual({ name: 'bastion', ip: '172.28.77.2', address: '127.0.0.1', port: 2222, publishedPort: 2222 });
    expect(byName.db2).toEqual({ name: 'db2', ip: '172.28.77.32', address: '172.28.77.32', port: 22 });
    expect(byName.backup1).toEqual({ name: 'backup1', ip: '172.28.77.61', address: '172.28.77.61', port: 22 });
    const ips = topo.hosts.map((h) => h.ip);
    expect(new Set(ips).size).toBe(ips.length);
    expect(o.subnet).toBe('172.28.77.0/24');
    for (const ip of ips) expect(ip).toMatch(/^172\.28\.77\.\d+$/);
    expect(topo.hosts.filter((h) => h.publishedPort !== undefined).map((h) => h.name)).toEqual(['bastion']);
    expect(topo.keyPath).toBe(join(REPO_ROOT, '.lab', 'id_ed25519'));
  });

  it('declares the groups the roles expect, and the lb VIP outside every host address', async () => {
    const dir = defaultLabOptions().inventoryDir;
    const inv = parse(await readFile(join(dir, 'hosts.yaml'), 'utf8'));
    expect(inv.groups.all).toEqual({ user: 'admin', key: '../../.lab/id_ed25519', bastion: 'bastion', become: 'sudo' });
    expect(inv.groups.postgres.children).toEqual(['postgres_primary', 'postgres_replica']);
    expect(inv.groups.redis.children).toEqual(['redis_master', 'redis_replica']);
    const inGroup = (g: string): string[] =>
      Object.entries(inv.hosts as Record<string, { groups: string[] }>).filter(([, h]) => h.groups.includes(g)).map(([n]) => n);
    expect(inGroup('sentinel')).toEqual(['redis1', 'redis2', 'mon1']);
    expect(inGroup('lb')).toEqual(['lb1', 'lb2']);
    expect(inGroup('monitoring')).toEqual(['mon1']);
    expect(inGroup('backup')).toEqual(['backup1']);
    const lb = parse(await readFile(join(dir, 'group_vars', 'lb.yaml'), 'utf8'));
    expect(lb.vip).toBe('172.28.77.10');
    const topo = await readTopology(dir);
    expect(topo.hosts.map((h) => h.ip)).not.toContain(lb.vip);
  });

  it('rejects a loopback host without a private address, naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'infra-labtopo-'));
    await writeFile(join(dir, 'hosts.yaml'), 'hosts:\n  b: { address: 127.0.0.1, port: 2200 }\ngroups:\n  all: { key: ./k }\n');
    const err = await readTopology(dir).catch((e) => e);
    await rm(dir, { recursive: true });
    expect(err).toBeInstanceOf(UserError);
    expect(err.format()).toContain(join(dir, 'hosts.yaml'));
    expect(err.format()).toContain('private_address');
  });
});

describe('known_hosts lines', () => {
  it('uses [addr]:port except on port 22, and drops the key comment', () => {
    const key = hostKeyFromPub('ssh-ed25519 AAAAC3Nz root@infra-test\n');
    expect(key).toBe('ssh-ed25519 AAAAC3Nz');
    expect(knownHostsLine('127.0.0.1', 2222, key)).toBe('[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nz');
    expect(knownHostsLine('172.28.77.11', 22, key)).toBe('172.28.77.11 ssh-ed25519 AAAAC3Nz');
    expect(() => hostKeyFromPub('garbage')).toThrow(/not an ssh public key/);
  });
});

describe('lab status table', () => {
  it('aligns columns', () => {
    expect(formatStatus([
      { name: 'bastion', address: '127.0.0.1:2222', state: 'running' },
      { name: 'db1', address: '172.28.77.31', state: 'missing' },
    ])).toBe(
      'NAME     ADDRESS         STATE\n' +
      'bastion  127.0.0.1:2222  running\n' +
      'db1      172.28.77.31    missing',
    );
  });
});

describe('lab status exit code', () => {
  const host = (name: string, state: string) => ({ name, address: '172.28.77.9', state });
  it('is up only when every host is running', () => {
    expect(notRunning([host('a', 'running'), host('b', 'running')])).toEqual([]);
    expect(notRunning([host('a', 'running'), host('b', 'exited'), host('c', 'missing')]).map((h) => h.name)).toEqual(['b', 'c']);
    expect(notRunning([host('a', 'missing'), host('b', 'missing')])).toHaveLength(2);
  });

  // The real CLI against a stand-in `docker` on PATH that reports the containers it is told to.
  it('`infra lab status` exits 1 when any host is not running, 0 when all are', async () => {
    const bin = await mkdtemp(join(tmpdir(), 'infra-fakedocker-'));
    await writeFile(
      join(bin, 'docker'),
      '#!/bin/sh\ncase "$1" in version) echo 24.0.0;; ps) printf "%b" "$FAKE_DOCKER_PS";; *) exit 1;; esac\n',
      { mode: 0o755 },
    );
    const names = (await readTopology(defaultLabOptions().inventoryDir)).hosts.map((h) => h.name);
    const status = (ps: string) =>
      spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'infra'), 'lab', 'status'], {
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_DOCKER_PS: ps, CI: '1' },
        encoding: 'utf8',
      });
    const all = status(names.map((n) => `infra-lab-${n}\\trunning\\n`).join(''));
    const one = status(names.slice(1).map((n) => `infra-lab-${n}\\trunning\\n`).join('') + `infra-lab-${names[0]}\\texited\\n`);
    const none = status('');
    await rm(bin, { recursive: true });
    expect(all.status, all.stderr).toBe(0);
    expect(all.stdout.split('\n').filter((l) => l.endsWith('running'))).toHaveLength(names.length);
    expect(one.status).toBe(1);
    expect(one.stderr).toContain(`lab: not up: ${names[0]} exited`);
    expect(none.status).toBe(1);
    expect(none.stdout.split('\n').filter((l) => l.endsWith('missing'))).toHaveLength(names.length);
  });
});

describe('lab preflight', () => {
  const path = process.env.PATH;
  afterEach(() => {
    process.env.PATH = path;
  });
  it('says how to install docker when there is no docker command', async () => {
    process.env.PATH = '/nonexistent';
    const err = await ensureDockerAnswers().catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.format()).toMatch(/docker is not installed[\s\S]*hint: .*bash test\/image\/ensure-docker\.sh/);
  });
});
