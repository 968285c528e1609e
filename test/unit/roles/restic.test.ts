/**
 * roles/restic with no host: which side a host is (client or repository host), the paths per
 * group, the per-host password and user, the repository host's per-client tasks, Ubuntu 22.04,
 * and the errors a bad inventory gets before anything connects.
 */
import { describe, it, expect } from 'vitest';
import role, { vars as resticVars } from '../../../roles/restic/role.js';
import { backupPaths, repositoryPassword } from '../../../roles/restic/client.js';
import { clientUser } from '../../../roles/restic/repository.js';
import { keyLine, parsePublicKey } from '../../../src/modules/restic.js';
import { Secret } from '../../../src/secrets/secret.js';
import { UserError } from '../../../src/errors.js';
import type { Task } from '../../../src/modules/types.js';
import { contextFor, fakeInventory, type FakeInventory } from './context.js';

const FLEET: FakeInventory = {
  hosts: {
    bastion: { address: '203.0.113.10', groups: ['bastion'], vars: { private_address: '10.20.0.2' } },
    api1: { address: '10.20.0.21', groups: ['api'], bastion: 'bastion' },
    redis1: { address: '10.20.0.41', groups: ['redis_master'], bastion: 'bastion' },
    backup1: { address: '10.20.0.61', groups: ['backup'], bastion: 'bastion' },
  },
  groups: { all: { vars: { restic_password: new Secret('master-secret-value') } }, redis: { children: ['redis_master'] }, redis_master: {} },
};

const tasksOf = (host: string, opts: Parameters<typeof contextFor>[3] = {}, inv = fakeInventory(FLEET)): Task[] => role.tasks(contextFor(resticVars, inv, host, opts));
const names = (tasks: Task[]) => tasks.map((t) => t.module.name);
const params = <T = Record<string, unknown>>(tasks: Task[], module: string): T[] => tasks.filter((t) => t.module.name === module).map((t) => t.params as T);

describe('restic: clients', () => {
  it('a client gets restic, its own key, its password, the pinned repository host key, the tools and two timers', () => {
    const t = tasksOf('api1');
    expect(params<{ names: string[] }>(t, 'apt.packages')[0].names).toEqual(['restic', 'openssh-client', 'jq']);
    expect(params<{ cmd: string; creates: string }>(t, 'command.run')[0]).toMatchObject({ creates: '/etc/restic/id_ed25519' });
    expect(params<{ peer: string; src: string; prefix: string }>(t, 'restic.peerKey')).toEqual([
      expect.objectContaining({ peer: 'backup1', src: '/etc/ssh/ssh_host_ed25519_key.pub', prefix: 'restic-repository', dest: '/etc/restic/known_hosts' }),
    ]);
    const cfg = params<{ dest: string; vars: Record<string, unknown> }>(t, 'files.template').find((p) => p.dest === '/etc/restic/ssh_config')!;
    expect(cfg.vars).toMatchObject({ address: '10.20.0.61', user: 'restic-api1', port: 22 });
    expect(params<{ name: string }>(t, 'systemd.service').map((p) => p.name)).toEqual(['infra-backup.timer', 'infra-backup-check.timer']);
    expect(names(t)).not.toContain('users.user');
  });

  it('/etc always; data and releases by group', () => {
    const v = resticVars.parse({ restic_password: new Secret('x1234') });
    expect(backupPaths(v, ['all', 'api'])).toEqual(['/etc', '/srv/api']);
    expect(backupPaths(v, ['all', 'redis', 'redis_master'])).toEqual(['/etc', '/var/lib/redis']);
    expect(backupPaths(v, ['all', 'monitoring'])).toEqual(['/etc']);
    const paths = (host: string) => params<{ path: string; content: string }>(tasksOf(host), 'files.file').find((p) => p.path === '/etc/restic/paths')!.content;
    expect(paths('redis1')).toBe('/etc\n/var/lib/redis\n');
    expect(paths('api1')).toBe('/etc\n/srv/api\n');
  });

  it('each host has its own repository password, derived from the master secret: stable, a Secret, never the master', () => {
    const master = new Secret('master-secret-value');
    const a = repositoryPassword(master, 'api1');
    expect(a).toBeInstanceOf(Secret);
    expect(a.reveal()).toBe(repositoryPassword(master, 'api1').reveal());
    expect(a.reveal()).not.toBe(repositoryPassword(master, 'redis1').reveal());
    expect(a.reveal()).not.toBe(repositoryPassword(new Secret('another-master'), 'api1').reveal());
    expect(a.reveal()).not.toContain('master-secret-value');
    const file = params<{ path: string; content: unknown; mode: string }>(tasksOf('api1'), 'files.file').find((p) => p.path === '/etc/restic/password')!;
    expect(file.content).toBeInstanceOf(Secret);
    expect(file.mode).toBe('0600');
  });

  it('Ubuntu 22.04 has restic in its own archive (0.12, which knows --read-data-subset N%): the same packages', () => {
    const t = tasksOf('api1', { facts: { os: { id: 'ubuntu', versionId: '22.04', codename: 'jammy', prettyName: 'Ubuntu 22.04.4 LTS', family: 'debian' } } });
    expect(names(t)).not.toContain('apt.repository');
    expect(params<{ names: string[] }>(t, 'apt.packages')[0].names).toContain('restic');
  });

  it('the timers are the inventory\'s; schedules and subsets are checked before connecting', () => {
    const t = tasksOf('api1', { vars: { restic_backup_on_calendar: 'Mon..Fri 01:00', restic_keep_daily: 14 } });
    expect(params<{ name: string; vars: Record<string, unknown> }>(t, 'systemd.unit').find((p) => p.name === 'infra-backup.timer')!.vars).toMatchObject({ onCalendar: 'Mon..Fri 01:00' });
    expect(params<{ dest: string; vars: Record<string, unknown> }>(t, 'files.template').find((p) => p.dest === '/usr/local/sbin/infra-backup')!.vars).toMatchObject({ keepDaily: 14 });
    expect(() => tasksOf('api1', { vars: { restic_backup_on_calendar: '02:00; rm -rf /' } })).toThrow();
    expect(() => tasksOf('api1', { vars: { restic_check_read_data_subset: 'all' } })).toThrow();
  });
});

describe('restic: the repository host', () => {
  it('one chrooted user, directory and key per client — never one for the bastion excluded by the pattern, never one for itself', () => {
    const t = tasksOf('backup1', { vars: { restic_clients: 'all:!bastion' } });
    expect(params<{ name: string; home: string; shell: string }>(t, 'users.user')).toEqual([
      expect.objectContaining({ name: 'restic-api1', home: '/srv/restic/restic-api1', shell: '/usr/sbin/nologin', group: 'restic' }),
      expect.objectContaining({ name: 'restic-redis1', home: '/srv/restic/restic-redis1' }),
    ]);
    const dirs = params<{ path: string; owner: string; mode: string }>(t, 'files.directory');
    expect(dirs).toContainEqual(expect.objectContaining({ path: '/srv/restic/restic-api1', owner: 'root', mode: '0755' }));
    expect(dirs).toContainEqual(expect.objectContaining({ path: '/srv/restic/restic-api1/repo', owner: 'restic-api1', mode: '0700' }));
    expect(params<{ peer: string; dest: string; prefix: string }>(t, 'restic.peerKey').map((p) => [p.peer, p.dest, p.prefix])).toEqual([
      ['api1', '/etc/ssh/restic-keys/restic-api1', 'restrict'],
      ['redis1', '/etc/ssh/restic-keys/restic-redis1', 'restrict'],
    ]);
    const sshd = params<{ dest: string; validate: string }>(t, 'files.template').find((p) => p.dest === '/etc/ssh/sshd_config.d/30-restic.conf')!;
    expect(sshd.validate).toBe('sshd -t -f %s');
    expect(names(t)).not.toContain('apt.packages');
  });

  it('the default clients are every host but the repository host (the bastion too)', () => {
    expect(params<{ name: string }>(tasksOf('backup1'), 'users.user').map((u) => u.name)).toEqual(['restic-bastion', 'restic-api1', 'restic-redis1']);
  });

  it('no repository host, or a host name useradd refuses: an input error that says what to do', () => {
    const inv: FakeInventory = { ...FLEET, hosts: { api1: FLEET.hosts.api1, bastion: FLEET.hosts.bastion } };
    expect(() => tasksOf('api1', {}, fakeInventory(inv))).toThrow(UserError);
    expect(() => tasksOf('api1', {}, fakeInventory(inv))).toThrow(/no host in group "backup"/);
    expect(clientUser('Web1')).toBe('restic-web1');
    expect(() => clientUser('a'.repeat(30))).toThrow(/useradd refuses/);
    expect(() => clientUser('web_1.example')).toThrow(UserError);
  });
});

describe('restic.peerKey: what it accepts from the peer', () => {
  it.each([
    ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG0 restic@api1\n', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG0'],
    ['ssh-rsa AAAAB3Nza== root@host', 'ssh-rsa AAAAB3Nza=='],
    ['ecdsa-sha2-nistp256 AAAAE2VjZHNh', 'ecdsa-sha2-nistp256 AAAAE2VjZHNh'],
    ['command="/bin/sh" ssh-ed25519 AAAA', undefined],
    ['ssh-ed25519 AAAA\nssh-ed25519 BBBB', 'ssh-ed25519 AAAA'],
    ['', undefined],
    ['not a key', undefined],
  ])('%j → %j', (input, want) => {
    expect(parsePublicKey(input)).toBe(want);
  });

  it('writes the prefix, then the key, one line', () => {
    expect(keyLine('restrict', 'ssh-ed25519 AAAA')).toBe('restrict ssh-ed25519 AAAA\n');
    expect(keyLine('', 'ssh-ed25519 AAAA')).toBe('ssh-ed25519 AAAA\n');
  });
});
