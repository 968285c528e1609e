/**
 * roles/hardening with no host: resolveRules (inventory openings → nftables rules) and the
 * tasks the role emits for fake contexts (jump host, host behind it, container, users).
 */
import { describe, it, expect } from 'vitest';
import role, { vars as hardeningVars, SYSCTL_PROFILE } from '../../../roles/hardening/role.js';
import { resolveRules, type AllowRule } from '../../../roles/hardening/firewall.js';
import type { NftRule } from '../../../src/docs/firewall.js';
import { createRenderer } from '../../../src/render/template.js';
import type { Task } from '../../../src/modules/types.js';
import { UserError } from '../../../src/errors.js';
import { loadInventory } from '../../../src/inventory/load.js';
import { lockedDecryptor } from '../../../src/engine/input.js';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { contextFor, fakeInventory, hostsOf, FACTS, type FakeInventory } from './context.js';
import { securitySuite, securitySources, CATCH_UP_HANDLER } from '../../../roles/hardening/updates.js';
import { lynisSkips } from '../../../roles/hardening/lynis.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** A small production-like inventory: one bastion, hosts behind it, one IPv6-only host. */
const FLEET: FakeInventory = {
  hosts: {
    bastion: { address: '203.0.113.10', groups: ['bastion'], vars: { private_address: '10.20.0.2' } },
    api1: { address: '10.20.0.21', groups: ['api'], bastion: 'bastion' },
    api2: { address: '10.20.0.22', groups: ['api'], bastion: 'bastion' },
    db1: { address: '10.20.0.31', groups: ['postgres_primary'], bastion: 'bastion' },
    redis1: { address: '10.20.0.41', groups: ['redis', 'sentinel'], bastion: 'bastion' },
    mon1: { address: 'fd00::51', groups: ['monitoring'], bastion: 'bastion' },
  },
  groups: {
    all: { vars: { ssh_allow_from: ['198.51.100.0/24'], firewall: { allow: [{ port: 9100, from: ['monitoring'], comment: 'node exporter' }] } } },
    postgres: { children: ['postgres_primary'], vars: { firewall: { allow: [{ port: 5432, from: ['api', 'monitoring'], comment: 'postgresql' }] } } },
    postgres_primary: {},
    redis: { vars: { firewall: { allow: [{ port: 6379, from: ['api', 'redis'], comment: 'redis' }] } } },
    sentinel: { vars: { firewall: { allow: [{ port: 26379, from: ['sentinel'], comment: 'sentinel' }] } } },
    spare: {},
  },
};

const inv = fakeInventory(FLEET);
const hosts = hostsOf(inv);

describe('resolveRules', () => {
  const one = (from: string[], extra: Partial<AllowRule> = {}) => resolveRules([{ port: 22, from, ...extra }], hosts);

  it.each([
    ['a group → the private addresses of its hosts', ['api'], { sources4: ['10.20.0.21', '10.20.0.22'], sources6: [], any: false }],
    ['a host with private_address → that address, not its public one', ['bastion'], { sources4: ['10.20.0.2'], sources6: [], any: false }],
    ['an IPv4 address and a CIDR stay as written', ['192.0.2.7', '198.51.100.0/24'], { sources4: ['192.0.2.7', '198.51.100.0/24'], sources6: [], any: false }],
    ['an IPv6 CIDR goes to ip6', ['2001:db8::/32'], { sources4: [], sources6: ['2001:db8::/32'], any: false }],
    ['a host whose address is IPv6 goes to ip6', ['monitoring'], { sources4: [], sources6: ['fd00::51'], any: false }],
    ['"any" opens the port to everyone, and only then', ['any'], { sources4: [], sources6: [], any: true }],
    ['a group, its host and its address are one source', ['api', 'api1', '10.20.0.21'], { sources4: ['10.20.0.21', '10.20.0.22'], sources6: [], any: false }],
    ['globs select hosts', ['api*'], { sources4: ['10.20.0.21', '10.20.0.22'], sources6: [], any: false }],
    ['mixed families split', ['api1', 'mon1'], { sources4: ['10.20.0.21'], sources6: ['fd00::51'], any: false }],
  ])('%s', (_what, from, want) => {
    const rules = one(from);
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({ match: 'tcp dport 22', ...want });
  });

  it('a source that resolves to no host opens nothing (never everything)', () => {
    expect(one(['spare'])).toEqual([]);
    expect(resolveRules([{ port: 5432, from: ['spare'] }, { port: 80, from: ['api'] }], hosts).map((r) => r.match)).toEqual(['tcp dport 80']);
  });

  it('an unknown name is an error, not an empty or open rule', () => {
    expect(() => one(['apii'])).toThrow(UserError);
    expect(() => one(['apii'])).toThrow(/did you mean "api/);
  });

  it('rules for the same port and protocol merge their sources and comments; tcp and udp stay apart', () => {
    const rules = resolveRules(
      [
        { port: 5432, from: ['api'], comment: 'postgresql' },
        { port: 5432, from: ['monitoring', 'api2'], comment: 'exporter' },
        { port: 5432, proto: 'udp', from: ['db1'] },
        { port: '60000-61000', proto: 'udp', from: ['any'], comment: 'mosh' },
      ],
      hosts,
    );
    expect(rules).toEqual([
      { comment: 'postgresql, exporter', match: 'tcp dport 5432', sources4: ['10.20.0.21', '10.20.0.22'], sources6: ['fd00::51'], any: false },
      { comment: 'udp 5432', match: 'udp dport 5432', sources4: ['10.20.0.31'], sources6: [], any: false },
      { comment: 'mosh', match: 'udp dport 60000-61000', sources4: [], sources6: [], any: true },
    ]);
  });

  it('a portless protocol (vrrp) opens the IP protocol by number, from the named group only', () => {
    const rules = resolveRules(
      [
        { proto: 'vrrp', from: ['api'], comment: 'keepalived' },
        { proto: 'vrrp', from: ['api2', 'monitoring'] },
        { port: 112, from: ['db1'] },
      ],
      hosts,
    );
    expect(rules).toEqual([
      { comment: 'keepalived', match: 'meta l4proto 112', sources4: ['10.20.0.21', '10.20.0.22'], sources6: ['fd00::51'], any: false },
      { comment: 'tcp 112', match: 'tcp dport 112', sources4: ['10.20.0.31'], sources6: [], any: false },
    ]);
  });

  it('no rule is open to all unless "any" was written', () => {
    const everyRule: AllowRule[] = [...inv.groups.keys()].map((g, i) => ({ port: 1000 + i, from: [g] }));
    const rules = resolveRules([...everyRule, { port: 22, from: ['198.51.100.0/24'] }], hosts);
    expect(rules.length).toBeGreaterThan(3);
    expect(rules.filter((r) => r.any)).toEqual([]);
  });
});

// ------------------------------------------------------------------------ tasks(ctx)

const tasksOf = (host: string, opts: Parameters<typeof contextFor>[3] = {}, inventory = inv) =>
  role.tasks(contextFor(hardeningVars, inventory, host, opts));

const byModule = (tasks: Task[], name: string) => tasks.filter((t) => t.module.name === name);
const params = (t: Task) => t.params as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The params writing template `src`: a files.template task, or a file of a confirm.files unit (with the unit's validate). */
const templateTask = (tasks: Task[], src: string) => {
  for (const t of tasks) {
    const p = params(t);
    if (t.module.name === 'files.template' && p.src === src) return p;
    const f = t.module.name === 'confirm.files' ? p.files.find((x: { template?: string }) => x.template === src) : undefined;
    if (f) return { ...f, validate: p.validate };
  }
  throw new Error(`no task writes ${src}`);
};
const nftRules = (tasks: Task[]) => templateTask(tasks, 'infra.nft.hbs').vars.rules as ReturnType<typeof resolveRules>;
const sshRule = (tasks: Task[]) => nftRules(tasks).find((r) => r.comment.startsWith('ssh'))!;

describe('hardening tasks: who may SSH', () => {
  it('a host behind the bastion accepts SSH only from the bastion private address', () => {
    const rule = sshRule(tasksOf('db1'));
    expect(rule).toMatchObject({ match: 'tcp dport 22', sources4: ['10.20.0.2'], sources6: [], any: false });
  });

  it('the jump host accepts SSH from ssh_allow_from', () => {
    expect(sshRule(tasksOf('bastion'))).toMatchObject({ sources4: ['198.51.100.0/24'], any: false });
  });

  it('a jump host with no ssh_allow_from is open to anyone (it is the way in)', () => {
    expect(sshRule(tasksOf('bastion', { vars: { ssh_allow_from: [] } }))).toMatchObject({ sources4: [], any: true });
  });

  it('ssh_port moves the SSH opening', () => {
    expect(sshRule(tasksOf('db1', { vars: { ssh_port: 2222 } })).match).toBe('tcp dport 2222');
  });

  it('a bastion given as [user@]address[:port] (not an inventory host) is its address', () => {
    const other = fakeInventory({ hosts: { web1: { address: '10.0.0.5', bastion: 'jump@192.0.2.99:2200' } } });
    expect(sshRule(tasksOf('web1', {}, other))).toMatchObject({ sources4: ['192.0.2.99'], any: false });
  });

  it('every jump host of the inventory may carry SSH to the hosts behind them', () => {
    const two = fakeInventory({
      hosts: {
        b1: { address: '203.0.113.1', groups: ['bastion'], vars: { private_address: '10.0.0.1' } },
        b2: { address: '203.0.113.2', groups: ['bastion'], vars: { private_address: '10.0.0.2' } },
        web1: { address: '10.0.0.5', bastion: 'b2' },
      },
    });
    expect(sshRule(tasksOf('web1', {}, two)).sources4).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('TCP forwarding: local on the jump host, none elsewhere', () => {
    expect(templateTask(tasksOf('bastion'), 'sshd-hardening.conf.hbs').vars.ssh.allowTcpForwarding).toBe('local');
    expect(templateTask(tasksOf('db1'), 'sshd-hardening.conf.hbs').vars.ssh.allowTcpForwarding).toBe('no');
  });
});

describe('hardening tasks: firewall openings from the inventory', () => {
  it('every group of the host contributes its firewall.allow (lists do not replace each other here)', () => {
    const ports = nftRules(tasksOf('redis1')).map((r) => `${r.match}: ${r.comment}`);
    expect(ports).toEqual(['tcp dport 22: ssh', 'tcp dport 9100: node exporter', 'tcp dport 6379: redis', 'tcp dport 26379: sentinel']);
  });

  it('parent groups count: db1 gets postgres openings through postgres_primary', () => {
    const pg = nftRules(tasksOf('db1')).find((r) => r.match === 'tcp dport 5432')!;
    expect(pg).toMatchObject({ sources4: ['10.20.0.21', '10.20.0.22'], sources6: ['fd00::51'], any: false });
  });

  it("a broken rule in a group whose list is not the host's winning one fails loudly (not a silently closed port)", () => {
    // redis1's merged firewall.allow is sentinel's list: redis's list reaches the role unvalidated.
    const typo = fakeInventory({
      ...FLEET,
      groups: { ...FLEET.groups, redis: { vars: { firewall: { allow: [{ port: 6379, form: ['api'], comment: 'redis' }] } } } },
    });
    expect(() => tasksOf('redis1', {}, typo)).toThrow(UserError);
    expect(() => tasksOf('redis1', {}, typo)).toThrow(/group redis: firewall\.allow\[0\]\.from: Required; firewall\.allow\[0\]: Unrecognized key\(s\) in object: 'form'/);
  });

  it('a group may open vrrp to itself (keepalived peers): rendered by number, and nft accepts it', async () => {
    const lbInv = fakeInventory({
      hosts: {
        lb1: { address: '10.20.0.11', groups: ['lb'], bastion: 'bastion' },
        lb2: { address: '10.20.0.12', groups: ['lb'], bastion: 'bastion' },
        bastion: { address: '203.0.113.10', groups: ['bastion'], vars: { private_address: '10.20.0.2' } },
      },
      groups: { lb: { vars: { firewall: { allow: [{ port: 443, from: ['any'] }, { proto: 'vrrp', from: ['lb'], comment: 'keepalived' }] } } } },
    });
    const nft = templateTask(tasksOf('lb1', {}, lbInv), 'infra.nft.hbs');
    expect(nft.vars.rules.find((r: NftRule) => r.comment === 'keepalived')).toEqual({
      comment: 'keepalived', match: 'meta l4proto 112', sources4: ['10.20.0.11', '10.20.0.12'], sources6: [], any: false,
    });
    const text = await createRenderer({ sharedDir: join(REPO, 'templates') }).renderFile(join(REPO, 'roles/hardening'), 'infra.nft.hbs', { vars: nft.vars });
    expect(text).toContain('ip saddr { 10.20.0.11, 10.20.0.12 } meta l4proto 112 accept');
    expect(text).toMatch(/^\s+tcp dport 443 accept$/m);
    if (spawnSync('nft', ['-c', '-f', '/dev/null'], { stdio: 'ignore' }).status !== 0) return; // no nft here: the render is checked above
    const dir = mkdtempSync(join(tmpdir(), 'infra-nft-'));
    try {
      writeFileSync(join(dir, 'lb1.nft'), text);
      expect(spawnSync('nft', ['-c', '-f', join(dir, 'lb1.nft')], { encoding: 'utf8' }).stderr).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('vrrp takes no port; tcp and udp need one (a rule that cannot mean what it says is an error)', () => {
    const issues = (rule: Record<string, unknown>) => {
      const r = hardeningVars.safeParse({ firewall: { allow: [rule] } });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ proto: 'vrrp', port: 112, from: ['lb'] })).toEqual(['firewall.allow.0.port: vrrp has no ports: remove port']);
    expect(issues({ from: ['lb'] })).toEqual(['firewall.allow.0.port: Required for tcp']);
    expect(issues({ proto: 'gre', from: ['lb'] })[0]).toMatch(/^firewall\.allow\.0\.proto: Invalid enum value/);
    expect(issues({ proto: 'vrrp', from: ['lb'] })).toEqual([]);
  });

  it('firewall.enabled: false installs no ruleset', () => {
    const tasks = tasksOf('db1', { vars: { firewall: { enabled: false } } });
    expect(() => templateTask(tasks, 'infra.nft.hbs')).toThrow(/no task writes/);
    expect(() => templateTask(tasks, 'nftables.conf.hbs')).toThrow(/no task writes/);
    expect(byModule(tasks, 'systemd.service').map((t) => params(t).name)).not.toContain('nftables');
  });
});

describe('hardening tasks: containers', () => {
  const GLOBAL = Object.keys(SYSCTL_PROFILE).filter((k) => !/^net\.ipv[46]\./.test(k));

  it('in a container, auditd and chrony are meta.skip and global sysctls are persisted, not set live', () => {
    const tasks = tasksOf('db1', { facts: { container: 'docker' } });
    const services = byModule(tasks, 'systemd.service').map((t) => params(t).name);
    expect(services).not.toContain('auditd');
    expect(services).not.toContain('chrony');
    const skipped = byModule(tasks, 'meta.skip').map((t) => params(t).what);
    expect(skipped).toEqual(
      expect.arrayContaining(['auditd service', 'chrony service', 'process accounting (acct)', 'live kernel-wide sysctls (kernel.*, fs.*, dev.*, net.core.*)']),
    );
    for (const t of byModule(tasks, 'sysctl.param')) {
      const p = params(t);
      // Only the network namespace's own keys: net.core.* is kernel-wide.
      expect([p.name, p.live]).toEqual([p.name, /^net\.ipv[46]\./.test(p.name)]);
    }
    expect(GLOBAL.length).toBeGreaterThan(3);
    // Persisted all the same: every key has a task writing the file.
    expect(byModule(tasks, 'sysctl.param').map((t) => params(t).name)).toEqual(expect.arrayContaining(GLOBAL));
  });

  it('on a VM, auditd and chrony run and every sysctl is set live', () => {
    const tasks = tasksOf('db1');
    expect(byModule(tasks, 'meta.skip')).toEqual([]);
    expect(byModule(tasks, 'systemd.service').map((t) => params(t).name)).toEqual(expect.arrayContaining(['auditd', 'chrony']));
    expect(byModule(tasks, 'sysctl.param').every((t) => params(t).live === true)).toBe(true);
  });
});

describe('hardening tasks: lockout safety and users', () => {
  const ADMIN = { name: 'ops', keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILqzjcXCYSzlAIYjSj6zZsdoTMdj3/Il4Rq82Lwk1U2I ops'] };
  const rootInv = fakeInventory({ hosts: { web1: { address: '10.0.0.5', user: 'root' } } });
  const adminInv = fakeInventory({ hosts: { web1: { address: '10.0.0.5', user: 'admin' } } });

  it.each([
    ['admin users, connecting as admin', adminInv, [ADMIN], 'no'],
    ['no admin users', adminInv, [], 'prohibit-password'],
    ['admin users, but infra connects as root', rootInv, [ADMIN], 'prohibit-password'],
  ])('PermitRootLogin with %s', (_what, inventory, admins, want) => {
    const tasks = tasksOf('web1', { vars: { admin_users: admins } }, inventory);
    expect(templateTask(tasks, 'sshd-hardening.conf.hbs').vars.ssh.permitRootLogin).toBe(want);
  });

  it('admin users get an account, their keys, and a sudoers file validated by visudo', () => {
    const tasks = tasksOf('web1', { vars: { admin_users: [ADMIN, { name: 'dev', nopasswd: false }] } }, adminInv);
    expect(byModule(tasks, 'users.user').map((t) => params(t).name)).toEqual(['ops', 'dev']);
    expect(byModule(tasks, 'users.authorizedKey').map((t) => params(t).user)).toEqual(['ops']);
    expect(templateTask(tasks, 'sudoers-admins.hbs')).toMatchObject({ validate: 'visudo -cf %s', mode: '0440' });
    expect(byModule(tasksOf('web1', {}, adminInv), 'files.template').map((t) => params(t).src)).not.toContain('sudoers-admins.hbs');
  });

  it('every config that could lock us out is validated before it is installed', () => {
    const tasks = tasksOf('db1', { vars: { admin_users: [ADMIN] } });
    expect(templateTask(tasks, 'sshd-hardening.conf.hbs').validate).toBe('sshd -t -f %s');
    expect(templateTask(tasks, 'infra.nft.hbs').validate).toBe('nft -c -f %s');
    expect(templateTask(tasks, 'nftables.conf.hbs').validate).toBe('nft -c -f %s');
    expect(templateTask(tasks, 'sudoers-admins.hbs').validate).toBe('visudo -cf %s');
  });

  it('sshd and the ruleset are commit-confirmed: activated in their own task, never by a handler at the end', () => {
    const tasks = tasksOf('db1');
    const units = byModule(tasks, 'confirm.files').map(params);
    expect(units.map((u) => [u.files.map((f: { path: string }) => f.path), u.activate])).toEqual([
      [['/etc/ssh/sshd_config.d/20-hardening.conf'], 'systemctl reload ssh'],
      [['/etc/nftables.conf', '/etc/nftables.d/infra.nft'], 'systemctl reload-or-restart nftables'],
    ]);
    // A first install has no old infra.nft to reload: the rollback drops the new table itself.
    expect(units[1].rollback).toMatch(/\[ -e \/etc\/nftables.d\/infra.nft \] \|\| nft delete table inet infra_filter/);
    for (const u of units) expect(u.within).toBeGreaterThanOrEqual(30);
    const notified = tasks.flatMap((t) => t.notify);
    expect(notified).not.toContain('reload ssh');
    expect(notified).not.toContain('reload nftables');
  });
});

describe('hardening tasks: sysctl order', () => {
  it('net.ipv4.ip_forward is the first sysctl (writing it resets net.ipv4.conf.*)', () => {
    const names = byModule(tasksOf('db1'), 'sysctl.param').map((t) => params(t).name);
    expect(names[0]).toBe('net.ipv4.ip_forward');
    expect(names).toEqual(Object.keys(SYSCTL_PROFILE));
  });

  it('an override keeps the key in place (ip_forward still first); new keys go last', () => {
    const tasks = tasksOf('db1', { vars: { sysctl_overrides: { 'vm.swappiness': 10, 'net.ipv4.ip_forward': 1 } } });
    const sysctls = byModule(tasks, 'sysctl.param').map((t) => [params(t).name, params(t).value]);
    expect(sysctls[0]).toEqual(['net.ipv4.ip_forward', 1]);
    expect(sysctls[sysctls.length - 1]).toEqual(['vm.swappiness', 10]);
    expect(new Set(byModule(tasks, 'sysctl.param').map((t) => params(t).file))).toEqual(new Set(['/etc/sysctl.d/90-infra-hardening.conf']));
  });
});

describe('hardening vars schema', () => {
  it('rejects what would produce a broken config', () => {
    for (const bad of [
      { ssh_port: 0 },
      { ssh_max_auth_tries: 11 },
      { admin_users: [{ name: 'Root User' }] },
      { admin_users: [{ name: 'ops', key: 'typo' }] },
      { firewall: { allow: [{ port: 22, from: [] }] } },
      { firewall: { allow: [{ port: '22; drop', from: ['any'] }] } },
      { firewall: { allow: [{ port: 22, form: ['any'] }] } },
      { firewall: { enabeld: false } },
    ]) {
      expect(hardeningVars.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});

describe('the shipped inventories (infra check does not run tasks(): this does)', () => {
  it.each(['prod', 'lab'])('every host of %s gets its tasks, and SSH is never open to all behind the bastion', async (env) => {
    const real = await loadInventory(env, { cwd: REPO, decryptor: lockedDecryptor });
    for (const name of real.hosts.keys()) {
      const spec = real.hosts.get(name)!;
      const tasks = tasksOf(name, { facts: { container: env === 'lab' ? 'docker' : 'none' } }, real);
      const ssh = sshRule(tasks);
      if (spec.conn.bastion) expect([name, ssh.any, ssh.sources4.length + ssh.sources6.length > 0]).toEqual([name, false, true]);
      for (const r of nftRules(tasks)) if (r.any) expect(`${name} ${r.comment}`).toMatch(/ssh|http|^bastion wireguard$/);
    }
  });
});

// ------------------------------------------------------------------ issue 21: outside judges

const UBUNTU = { os: { id: 'ubuntu', versionId: '22.04', codename: 'jammy', prettyName: 'Ubuntu 22.04.4 LTS', family: 'debian' as const } };
const named = (tasks: Task[], name: string) => {
  const t = tasks.find((x) => x.name === name || x.name?.startsWith(name));
  if (!t) throw new Error(`no task named ${name}`);
  return t;
};

describe('hardening tasks: security updates that arrive', () => {
  it('the security suite comes first: every package below is installed with its security fixes', () => {
    const tasks = tasksOf('db1');
    expect(tasks[0].name).toBe('security suite bookworm-security in the apt sources');
    expect(tasks[1].module.name).toBe('apt.packages');
  });

  it.each([
    ['Debian 12', {}, 'bookworm-security', 'http://security.debian.org/debian-security', 'main', '/usr/share/keyrings/debian-archive-keyring.gpg'],
    ['Ubuntu 22.04', UBUNTU, 'jammy-security', 'http://security.ubuntu.com/ubuntu', 'main restricted universe multiverse', '/usr/share/keyrings/ubuntu-archive-keyring.gpg'],
  ])('%s: the deb822 stanza of its security suite', (_os, facts, suite, uri, components, keyring) => {
    const s = securitySuite({}, { ...FACTS, ...facts });
    expect(securitySources(s).split('\n')).toEqual(
      expect.arrayContaining(['Types: deb', `URIs: ${uri}`, `Suites: ${suite}`, `Components: ${components}`, `Signed-By: ${keyring}`]),
    );
    const task = params(tasksOf('db1', { facts })[0]);
    // Written only where the distribution's own sources lack the suite (no duplicate target).
    expect(task.unless).toContain(`'^${suite} deb '`);
    expect(task.unless).toContain('apt-get indextargets');
    expect(task.cmd).toContain(`Suites: ${suite}`);
    expect(task.cmd).toMatch(/apt-get -q -o DPkg::Lock::Timeout=120 update/);
  });

  it('a mirror and components of our own replace the defaults', () => {
    const s = securitySuite({ security_mirror: 'http://mirror.example/debian-security', security_components: ['main', 'contrib'] }, FACTS);
    expect(s).toMatchObject({ uri: 'http://mirror.example/debian-security', components: ['main', 'contrib'] });
  });

  it('adding the suite installs the pending security updates in the same run, unless told not to', () => {
    expect(tasksOf('db1')[0].notify).toContain(CATCH_UP_HANDLER);
    expect(tasksOf('db1', { vars: { security_catch_up: false } })[0].notify).not.toContain(CATCH_UP_HANDLER);
    expect(params(role.handlers![CATCH_UP_HANDLER]).cmd).toMatch(/^unattended-upgrade --no-minimal-upgrade-steps && systemctl restart infra-apt-metrics.service$/);
  });

  it('pending updates are exported: script, hourly timer, apt hook, and a first export', () => {
    const tasks = tasksOf('db1');
    expect(byModule(tasks, 'systemd.unit').map((t) => params(t).name)).toEqual(
      expect.arrayContaining(['infra-apt-metrics.service', 'infra-apt-metrics.timer']),
    );
    expect(templateTask(tasks, 'apt-metrics-hook.conf.hbs').dest).toBe('/etc/apt/apt.conf.d/80infra-apt-metrics');
    expect(params(named(tasks, 'first export of pending updates')).creates).toBe('/var/lib/prometheus/node-exporter/apt.prom');
    expect(params(named(tasksOf('db1', { vars: { textfile_dir: '/srv/textfile' } }), 'first export')).creates).toBe('/srv/textfile/apt.prom');
  });
});

describe('hardening tasks: accounts', () => {
  const defs = (tasks: Task[]) => byModule(tasks, 'files.line').filter((t) => params(t).path === '/etc/login.defs').map((t) => params(t).line);

  it('login.defs: umask 027 (homes 0750), password ages, hashing rounds', () => {
    expect(defs(tasksOf('db1'))).toEqual([
      'UMASK\t027', 'HOME_MODE\t0750', 'PASS_MAX_DAYS\t365', 'PASS_MIN_DAYS\t1', 'PASS_WARN_AGE\t14', 'SHA_CRYPT_MIN_ROUNDS\t65536', 'SHA_CRYPT_MAX_ROUNDS\t65536',
    ]);
    expect(defs(tasksOf('db1', { vars: { login_umask: '077' } })).slice(0, 2)).toEqual(['UMASK\t077', 'HOME_MODE\t0700']);
  });

  it('key-only admins never get a password expiry (it would refuse their SSH key a year later)', () => {
    const tasks = tasksOf('db1', { vars: { admin_users: [{ name: 'ops' }, { name: 'dev', nopasswd: false }] } });
    const chage = byModule(tasks, 'command.run').filter((t) => /chage/.test(params(t).cmd));
    expect(chage.map((t) => params(t).cmd)).toEqual(['chage -M -1 ops']);
    expect(params(chage[0]).onlyIf).toBe('getent shadow ops | cut -d: -f5 | grep -q .');
  });

  it('password quality needs its dictionary: cracklib-runtime comes with pam_pwquality', () => {
    const names = params(byModule(tasksOf('db1'), 'apt.packages')[0]).names;
    expect(names).toEqual(expect.arrayContaining(['libpam-pwquality', 'cracklib-runtime', 'libpam-tmpdir', 'aide', 'lynis', 'needrestart', 'debsums', 'apt-show-versions', 'apt-listchanges', 'acct', 'sysstat']));
  });
});

describe('hardening tasks: SSH to ssh-audit\'s bar', () => {
  it('MACs are encrypt-then-MAC only; the post-quantum KEX stays first', () => {
    const v = hardeningVars.parse({});
    expect(v.ssh_macs.every((m) => m.endsWith('-etm@openssh.com'))).toBe(true);
    expect(v.ssh_kex_algorithms[0]).toBe('sntrup761x25519-sha512@openssh.com');
  });

  it('Diffie-Hellman moduli under 3072 bits are removed, with a read-only guard', () => {
    const t = params(named(tasksOf('db1'), 'remove Diffie-Hellman moduli'));
    expect(t.onlyIf).toBe("awk '$1 !~ /^#/ && $5 + 1 < 3072' /etc/ssh/moduli | grep -q .");
    expect(t.cmd).toContain("awk '$1 ~ /^#/ || $5 + 1 >= 3072' /etc/ssh/moduli > /etc/ssh/moduli.infra");
  });
});

describe('hardening tasks: file integrity (AIDE)', () => {
  it('every task that can change the host re-baselines AIDE at the end of the play; the handler runs last', () => {
    const tasks = tasksOf('db1', { facts: { container: 'docker' } });
    for (const t of tasks) {
      if (t.module.name === 'meta.skip') continue;
      expect([t.name ?? t.module.name, t.notify]).toEqual([t.name ?? t.module.name, expect.arrayContaining(['update aide database'])]);
    }
    const handlers = Object.keys(role.handlers!);
    expect(handlers[handlers.length - 1]).toBe('update aide database');
    expect(role.handlers!['update aide database'].module.name).toBe('aide.update');
  });

  it('watched paths and exclusions reach aide.conf; the config is checked before it is installed', () => {
    const t = templateTask(tasksOf('db1'), 'aide.conf.hbs');
    expect(t).toMatchObject({ dest: '/etc/aide/aide.conf', mode: '0600', validate: 'aide --config %s --config-check' });
    // The first database is the handler's too: at the end of the play, after the whole baseline.
    expect(tasksOf('db1').find((t) => params(t).src === 'aide.conf.hbs')!.notify).toContain('update aide database');
  });

  it('the dpkg hook can be turned off (then its file is removed)', () => {
    expect(templateTask(tasksOf('db1'), 'aide-hook.conf.hbs').dest).toBe('/etc/apt/apt.conf.d/80infra-aide');
    const off = tasksOf('db1', { vars: { aide_rebaseline_after_dpkg: false } });
    expect(byModule(off, 'files.absent').map((t) => params(t).path)).toContain('/etc/apt/apt.conf.d/80infra-aide');
  });
});

describe('Lynis profile: what is skipped, and why', () => {
  const keys = Object.keys(SYSCTL_PROFILE);

  it('on a VM nothing is skipped but the site decisions', () => {
    expect(lynisSkips({ lynis_skip_tests: [] }, FACTS, keys)).toEqual([]);
    const own = [{ test: 'USB-3000', reason: 'no USB ports: cloud VMs' }];
    expect(lynisSkips({ lynis_skip_tests: own }, FACTS, keys)).toEqual(own);
  });

  it('in a container: what belongs to the host (kernel-wide sysctls, mounts, MAC, USB, accounting), each with its reason', () => {
    const skips = lynisSkips({ lynis_skip_tests: [] }, { ...FACTS, container: 'docker' }, keys);
    const tests = skips.map((s) => s.test);
    expect(tests).toEqual(expect.arrayContaining(['KRNL-6000:kernel.kptr_restrict', 'KRNL-6000:fs.protected_symlinks', 'KRNL-6000:net.core.bpf_jit_harden', 'FILE-6310', 'FILE-6344', 'MACF-6290', 'USB-3000', 'ACCT-9622', 'ACCT-9628']));
    // A setting the container owns is always judged.
    expect(tests.filter((t) => /^KRNL-6000:net\.ipv[46]\./.test(t))).toEqual([]);
    // Never a whole finding of ours: SSH, packages, accounts, file integrity, firewall stay judged.
    expect(tests.filter((t) => /^(SSH|PKGS|AUTH|FINT|FIRE|DEB|HRDN|MALW)-/.test(t))).toEqual([]);
    for (const s of skips) expect(s.reason).toMatch(/container.*\(docker\)/);
  });

  it('the profile and the weekly timer are installed', () => {
    const tasks = tasksOf('db1', { facts: { container: 'docker' } });
    const prf = templateTask(tasks, 'lynis.prf.hbs');
    expect(prf.dest).toBe('/etc/lynis/custom.prf');
    expect(prf.vars.skips.length).toBeGreaterThan(10);
    expect(byModule(tasks, 'systemd.service').map((t) => params(t).name)).toEqual(
      expect.arrayContaining(['infra-lynis.timer', 'infra-aide-check.timer', 'infra-apt-metrics.timer']),
    );
  });
});

describe('the baseline test image', () => {
  it('has exactly the packages the role installs (test/image/baseline-packages)', () => {
    const baked = readFileSync(join(REPO, 'test/image/baseline-packages'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    for (const facts of [{ container: 'docker' }, { container: 'none' }]) {
      const [install] = byModule(tasksOf('db1', { facts }), 'apt.packages');
      expect(params(install).names).toEqual(baked);
    }
  });
});
