/**
 * Every template of the hardening and bastion roles, rendered by the real renderer with the
 * data the engine gives it ({vars: role vars + task vars, host, facts}) for the tasks the
 * roles emit. The nftables ruleset is also checked by `nft -c` when this machine has nft.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import hardening, { vars as hardeningVars } from '../../../roles/hardening/role.js';
import bastion, { vars as bastionVars } from '../../../roles/bastion/role.js';
import { createRenderer } from '../../../src/render/template.js';
import type { RoleContext } from '../../../src/playbook/role.js';
import type { Task } from '../../../src/modules/types.js';
import { contextFor, fakeInventory } from './context.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const renderer = createRenderer({ sharedDir: join(REPO, 'templates') });

const inv = fakeInventory({
  hosts: {
    bastion: { address: '203.0.113.10', groups: ['bastion'], vars: { private_address: '10.20.0.2' } },
    api1: { address: '10.20.0.21', groups: ['api'], bastion: 'bastion' },
    db1: { address: '10.20.0.31', groups: ['postgres'], bastion: 'bastion' },
    mon1: { address: 'fd00::51', groups: ['monitoring'], bastion: 'bastion' },
  },
  groups: {
    all: {
      vars: {
        ssh_allow_from: ['198.51.100.0/24'],
        admin_users: [{ name: 'ops', keys: ['ssh-ed25519 AAAA ops'] }, { name: 'dev', nopasswd: false }],
        firewall: { allow: [{ port: 9100, from: ['monitoring'], comment: 'node exporter' }], log_drops: true },
      },
    },
    postgres: { vars: { firewall: { allow: [{ port: 5432, from: ['api'], comment: 'postgresql' }] } } },
    api: { vars: { firewall: { allow: [{ port: 443, from: ['any'], comment: 'https' }] } } },
  },
});

/** src → rendered text, for every files.template task of the role on that host. */
async function renderRole<V>(
  role: { name: string; tasks(ctx: RoleContext<V>): Task[] },
  ctx: RoleContext<V>,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const roleDir = join(REPO, 'roles', role.name);
  // files.template tasks, and the files of confirm.files units (commit-confirmed sshd/nftables).
  const written = role.tasks(ctx).flatMap((t) => {
    if (t.module.name === 'files.template') return [t.params as { src: string; vars?: Record<string, unknown> }];
    if (t.module.name !== 'confirm.files') return [];
    const files = (t.params as { files: { template?: string; vars?: Record<string, unknown> }[] }).files;
    return files.filter((f) => f.template).map((f) => ({ src: f.template!, vars: f.vars }));
  });
  for (const p of written) {
    const data = {
      vars: { ...(ctx.vars as Record<string, unknown>), ...p.vars },
      host: { name: ctx.host.name, address: ctx.host.address, groups: ctx.host.groups },
      facts: ctx.host.facts,
    };
    out.set(p.src, await renderer.renderFile(roleDir, p.src, data));
  }
  return out;
}

const templatesOf = (role: string) => readdirSync(join(REPO, 'roles', role, 'templates')).filter((f) => f.endsWith('.hbs')).sort();
const lines = (text: string) => text.split('\n').map((l) => l.trim());

describe('hardening templates', () => {
  let db1: Map<string, string>;
  let bastionHost: Map<string, string>;
  beforeAll(async () => {
    db1 = await renderRole(hardening, contextFor(hardeningVars, inv, 'db1'));
    bastionHost = await renderRole(hardening, contextFor(hardeningVars, inv, 'bastion', { facts: { container: 'docker' } }));
  });

  it('every template of the role is used by a task and renders', () => {
    expect([...db1.keys()].sort()).toEqual(templatesOf('hardening'));
    for (const text of db1.values()) expect(text).not.toMatch(/undefined|\[object Object\]/);
  });

  it('infra.nft: default drop, only its own table, and the resolved openings', () => {
    const nft = lines(db1.get('infra.nft.hbs')!);
    expect(nft).toContain('type filter hook input priority filter; policy drop;');
    expect(nft).toContain('delete table inet infra_filter');
    expect(nft).not.toContain('flush ruleset');
    expect(nft).toContain('ip saddr { 10.20.0.2 } tcp dport 22 accept');
    expect(nft).toContain('ip6 saddr { fd00::51 } tcp dport 9100 accept');
    expect(nft).toContain('ip saddr { 10.20.0.21 } tcp dport 5432 accept');
    expect(nft).toContain('limit rate 5/minute log prefix "infra-drop: " level info');
    // db1 is not in api: the https opening to everyone is not its business.
    expect(nft.filter((l) => /^(tcp|udp) dport/.test(l))).toEqual([]);
    expect(nft).toContain('iif "lo" accept');
    expect(nft).toContain('ct state established,related accept');
  });

  it('infra.nft on the jump host: SSH from ssh_allow_from only', () => {
    const nft = lines(bastionHost.get('infra.nft.hbs')!);
    expect(nft).toContain('ip saddr { 198.51.100.0/24 } tcp dport 22 accept');
    expect(nft.filter((l) => /dport 22 /.test(l))).toHaveLength(1);
  });

  it('nftables.conf includes the drop-in directory and flushes nothing', () => {
    const conf = db1.get('nftables.conf.hbs')!;
    expect(conf.startsWith('#!/usr/sbin/nft -f\n')).toBe(true);
    expect(lines(conf)).toContain('include "/etc/nftables.d/*.nft"');
    expect(conf).not.toMatch(/^flush/m);
  });

  it('sshd drop-in: hardened keywords, root login per admin users, forwarding per role', () => {
    const sshd = lines(db1.get('sshd-hardening.conf.hbs')!);
    for (const want of [
      'Port 22',
      'PermitRootLogin no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'MaxAuthTries 3',
      'AllowTcpForwarding no',
      'X11Forwarding no',
      'Banner /etc/issue.net',
      'Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr',
    ]) {
      expect(sshd).toContain(want);
    }
    expect(lines(bastionHost.get('sshd-hardening.conf.hbs')!)).toContain('AllowTcpForwarding local');
    // Every non-comment line is "Keyword value" (sshd rejects anything else).
    for (const l of sshd.filter((x) => x && !x.startsWith('#'))) expect(l).toMatch(/^[A-Z][A-Za-z0-9]+ \S+$/);
  });

  it('sudoers: one line per admin, NOPASSWD only where asked', () => {
    const sudoers = lines(db1.get('sudoers-admins.hbs')!);
    expect(sudoers).toContain('ops ALL=(ALL:ALL) NOPASSWD: ALL');
    expect(sudoers).toContain('dev ALL=(ALL:ALL) ALL');
    expect(sudoers).toContain('Defaults use_pty');
  });

  it('fail2ban, auditd, journald, unattended-upgrades, banner', () => {
    const jail = lines(db1.get('fail2ban-jail.local.hbs')!);
    expect(jail).toEqual(expect.arrayContaining(['[sshd]', 'backend = systemd', 'port = 22', 'maxretry = 5', 'banaction = nftables']));
    const audit = lines(db1.get('audit.rules.hbs')!);
    expect(audit).toContain('-w /etc/sudoers -p wa -k scope');
    expect(audit).not.toContain('-e 2');
    expect(lines(db1.get('journald.conf.hbs')!)).toEqual(expect.arrayContaining(['Storage=persistent', 'SystemMaxUse=500M']));
    const uu = db1.get('unattended-upgrades.conf.hbs')!;
    expect(uu).toContain('"origin=Debian,codename=${distro_codename}-security,label=Debian-Security";');
    expect(uu).toContain('Unattended-Upgrade::Automatic-Reboot "false";');
    expect(db1.get('issue.net.hbs')).toBe('Authorized access only. Activity on this system is monitored and logged.\n');
  });

  it('options reach the files: audit_immutable, unattended_reboot, Ubuntu origins', async () => {
    const ctx = contextFor(hardeningVars, inv, 'db1', {
      vars: { audit_immutable: true, unattended_reboot: true },
      facts: { os: { id: 'ubuntu', versionId: '22.04', codename: 'jammy', prettyName: 'Ubuntu 22.04', family: 'debian' } },
    });
    const out = await renderRole(hardening, ctx);
    expect(lines(out.get('audit.rules.hbs')!)).toContain('-e 2');
    expect(out.get('unattended-upgrades.conf.hbs')).toContain('Unattended-Upgrade::Automatic-Reboot "true";');
    expect(out.get('unattended-upgrades.conf.hbs')).toContain('"origin=Ubuntu,archive=${distro_codename}-security,label=Ubuntu";');
  });

  // Validation by the real tool when this machine has it (check mode: nothing is applied).
  const nftWorks = spawnSync('nft', ['-c', '-f', '/dev/null'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!nftWorks)('nft -c accepts the rendered ruleset (and rejects a broken one)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'infra-nft-'));
    try {
      for (const [name, text] of [['db1.nft', db1.get('infra.nft.hbs')!], ['bastion.nft', bastionHost.get('infra.nft.hbs')!]]) {
        writeFileSync(join(dir, name), text);
        execFileSync('nft', ['-c', '-f', join(dir, name)], { stdio: 'pipe' });
      }
      writeFileSync(join(dir, 'broken.nft'), db1.get('infra.nft.hbs')!.replace('policy drop;', 'policy dorp;'));
      expect(spawnSync('nft', ['-c', '-f', join(dir, 'broken.nft')], { stdio: 'pipe' }).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bastion templates', () => {
  let out: Map<string, string>;
  beforeAll(async () => {
    out = await renderRole(bastion, contextFor(bastionVars, inv, 'bastion'));
  });

  it('every template of the role is used by a task and renders', () => {
    expect([...out.keys()].sort()).toEqual(templatesOf('bastion'));
    for (const text of out.values()) expect(text).not.toMatch(/undefined|\[object Object\]/);
  });

  it('sshd drop-in: local forwarding to the SSH port of every other host only', () => {
    const sshd = lines(out.get('sshd-bastion.conf.hbs')!);
    expect(sshd).toContain('AllowTcpForwarding local');
    expect(sshd).toContain('PermitOpen 10.20.0.21:22 10.20.0.31:22 [fd00::51]:22');
    expect(sshd).toContain('MaxSessions 10');
    for (const l of sshd.filter((x) => x && !x.startsWith('#'))) expect(l).toMatch(/^[A-Z][A-Za-z0-9]+ \S/);
  });

  it('the sshd drop-in is commit-confirmed (validated, reloaded in its task, kept only if a new connection gets in)', () => {
    const tasks = bastion.tasks(contextFor(bastionVars, inv, 'bastion'));
    const units = tasks.filter((t) => t.module.name === 'confirm.files').map((t) => t.params as { files: { path: string }[]; validate: string; activate: string; within: number });
    expect(units.map((u) => [u.files.map((f) => f.path), u.validate, u.activate])).toEqual([[['/etc/ssh/sshd_config.d/05-bastion.conf'], 'sshd -t -f %s', 'systemctl reload ssh']]);
    expect(units[0]!.within).toBeGreaterThanOrEqual(30);
    expect(tasks.flatMap((t) => t.notify)).not.toContain('reload ssh');
  });

  it('an explicit bastion_permit_open list is used as written', async () => {
    const o = await renderRole(bastion, contextFor(bastionVars, inv, 'bastion', { vars: { bastion_permit_open: ['db1.internal:22', '10.0.0.9:2222'] } }));
    expect(lines(o.get('sshd-bastion.conf.hbs')!)).toContain('PermitOpen db1.internal:22 10.0.0.9:2222');
  });

  it('a jump host alone in its inventory permits no forwarding at all', async () => {
    const alone = fakeInventory({ hosts: { bastion: { address: '203.0.113.10', groups: ['bastion'] } } });
    const o = await renderRole(bastion, contextFor(bastionVars, alone, 'bastion'));
    expect(lines(o.get('sshd-bastion.conf.hbs')!)).toContain('PermitOpen none');
  });

  it('fail2ban: stricter sshd jail and recidive', () => {
    const jail = lines(out.get('fail2ban-bastion.local.hbs')!);
    expect(jail).toEqual(expect.arrayContaining(['[sshd]', 'maxretry = 3', 'findtime = 30m', 'bantime = 6h', '[recidive]', 'enabled = true']));
  });

  it('session logging: interactive shells only, into the log directory', () => {
    const sh = out.get('session-log.sh.hbs')!;
    expect(sh).toContain('if [ -n "$PS1" ] && [ -t 0 ]');
    expect(sh).toContain('_infra_log="/var/log/infra-sessions/$(id -un)-');
    expect(spawnSync('sh', ['-n'], { input: sh }).status).toBe(0);
  });
});
