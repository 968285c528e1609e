/**
 * Proves the fleet fixture with the system OpenSSH client: strict host key checking
 * against the fixture's known_hosts, the fixture's key, and targets reached only via the bastion.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { docker } from '../../src/lab/docker.js';
import { startFleet, type Fleet } from './fleet.js';
import { SSH, NO_SSH_CLIENT } from './helpers/ssh-client.js';

function ssh(fleet: Fleet, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const common = [
    '-F', '/dev/null',
    '-o', `UserKnownHostsFile=${join(fleet.inventoryDir, 'known_hosts')}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=10',
    '-o', 'IdentitiesOnly=yes',
    '-i', fleet.keyPath,
  ];
  // ProxyCommand (not -J) so the jump connection uses the same strict options.
  const proxy = [SSH, ...common, '-p', String(fleet.bastion.port), '-W', '%h:%p', 'admin@127.0.0.1'].join(' ');
  return new Promise((resolve) => {
    execFile(SSH, [...common, '-o', `ProxyCommand=${proxy}`, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** True if a TCP connection to ip:port opens within 2 s. */
function tcpOpens(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: ip, port, timeout: 2000 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('timeout', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(false));
  });
}

describe('fleet fixture', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    const t0 = performance.now();
    fleet = await startFleet({ targets: 3, groupVars: { targets: { greeting: 'hello' } } });
    console.log(`startFleet({targets: 3}) took ${Math.round(performance.now() - t0)} ms`);
  }, 120_000);
  afterAll(() => fleet?.down(), 60_000);

  it('reaches every target through the bastion with strict host keys, and admin has sudo', async (ctx) => {
    if (NO_SSH_CLIENT) ctx.skip(NO_SSH_CLIENT);
    for (const t of fleet.targets) {
      const r = await ssh(fleet, [`admin@${t.ip}`, 'sudo -n true && hostname && systemctl is-system-running']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.split('\n').slice(0, 2)).toEqual([t.name, 'running']);
    }
  }, 60_000);

  it('refuses a target whose key is not in known_hosts', async (ctx) => {
    if (NO_SSH_CLIENT) ctx.skip(NO_SSH_CLIENT);
    const t = fleet.targets[0];
    await fleet.exec(t.name, 'rm /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh');
    const r = await ssh(fleet, [`admin@${t.ip}`, 'true']);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  }, 30_000);

  it('publishes only the bastion, and only on loopback', async () => {
    const ports = async (name: string): Promise<string> =>
      (await docker(['ps', '--filter', 'label=infra-test.pid=' + process.pid, '--filter', `label=infra-test.host=${name}`, '--format', '{{.Ports}}'])).trim();
    expect(await ports('bastion')).toMatch(/^127\.0\.0\.1:\d+->22\/tcp$/);
    for (const t of fleet.targets) expect(await ports(t.name)).toBe('');
    expect(await tcpOpens('127.0.0.1', fleet.bastion.port)).toBe(true);
  });

  it('writes an inventory with the bastion, the targets and group vars', async () => {
    const inv = parse(await readFile(join(fleet.inventoryDir, 'hosts.yaml'), 'utf8'));
    expect(inv.groups.all).toEqual({ user: 'admin', key: './id_ed25519', bastion: 'bastion', become: 'sudo' });
    expect(inv.hosts.bastion).toEqual({
      address: '127.0.0.1',
      port: fleet.bastion.port,
      groups: ['bastion'],
      bastion: null,
      vars: { private_address: fleet.bastion.ip },
    });
    expect(inv.hosts.target3).toEqual({ address: fleet.targets[2].ip, groups: ['targets'] });
    const gv = parse(await readFile(join(fleet.inventoryDir, 'group_vars', 'targets.yaml'), 'utf8'));
    expect(gv).toEqual({ greeting: 'hello' });
    const known = await readFile(join(fleet.inventoryDir, 'known_hosts'), 'utf8');
    expect(known).toContain(await fleet.hostKeyLine('bastion'));
    expect(await fleet.hostKeyLine('bastion')).toMatch(/^\[127\.0\.0\.1\]:\d+ ssh-ed25519 AAAA\S+$/);
    expect(await fleet.hostKeyLine('target2')).toBe(
      `${fleet.targets[1].ip} ${(await fleet.exec('target2', 'cat /etc/ssh/ssh_host_ed25519_key.pub')).stdout.split(' ').slice(0, 2).join(' ')}`,
    );
  });

  it('stop() kills one host and leaves the others running', async () => {
    await fleet.stop('target3');
    expect(await tcpOpens(fleet.targets[2].ip, 22)).toBe(false);
    expect((await fleet.exec('target2', 'systemctl is-system-running')).stdout.trim()).toBe('running');
  }, 30_000);
});

describe('fleet fixture options', () => {
  it('applies extra sshd config on every host, and down() removes every container', async (ctx) => {
    if (NO_SSH_CLIENT) ctx.skip(NO_SSH_CLIENT);
    const t0 = performance.now();
    const fleet = await startFleet({ targets: 1, sshdConfig: 'MaxSessions 2', knownHosts: false });
    console.log(`startFleet({targets: 1}) took ${Math.round(performance.now() - t0)} ms`);
    try {
      for (const h of ['bastion', 'target1']) {
        expect((await fleet.exec(h, 'sshd -T | grep -i ^maxsessions')).stdout.trim()).toBe('maxsessions 2');
      }
      expect(await readFile(join(fleet.inventoryDir, 'known_hosts'), 'utf8')).toBe('');
      const r = await ssh(fleet, [`admin@${fleet.targets[0].ip}`, 'true']);
      expect(r.code).toBe(255); // no known host keys: strict checking refuses
    } finally {
      const t1 = performance.now();
      await fleet.down();
      console.log(`fleet.down() took ${Math.round(performance.now() - t1)} ms`);
    }
    const left = await docker(['ps', '-aq', '--filter', `label=infra-test.pid=${process.pid}`, '--filter', 'label=infra-test.host=target1']);
    expect(left.trim()).toBe('');
    expect(existsSync(fleet.inventoryDir)).toBe(false);
  }, 120_000);
});
