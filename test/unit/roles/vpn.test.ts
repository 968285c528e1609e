/**
 * roles/vpn with no host: the tasks for an inventory with operators, the lockout and
 * dead-tunnel checks (UserError before anything changes), and the rendered configuration.
 */
import { describe, it, expect } from 'vitest';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import role, { vars as vpnVars, subnetOf } from '../../../roles/vpn/role.js';
import { createRenderer } from '../../../src/render/template.js';
import { loadInventory } from '../../../src/inventory/load.js';
import { lockedDecryptor } from '../../../src/engine/input.js';
import { UserError } from '../../../src/errors.js';
import type { Task } from '../../../src/modules/types.js';
import { contextFor, fakeInventory, type FakeInventory } from './context.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const renderer = createRenderer({ sharedDir: join(REPO, 'templates') });

const ALICE = { name: 'alice', public_key: '4q22gHxQqsRAs/QHW7jGw9J0FcwgIDMmOIprNAjBFT0=', address: '10.99.0.2' };
const BOB = { name: 'bob', public_key: 'OaUtF5WtuDzGXS9yWMxk4SFloy6Q5yWovsMRqaZDlmQ=', address: '10.99.0.3' };
const WG_OPENING = { port: 51820, proto: 'udp', from: ['any'], comment: 'wireguard' };

const inventoryWith = (bastionVars: Record<string, unknown>, address = '203.0.113.10'): FakeInventory => ({
  hosts: {
    bastion: { address, groups: ['bastion'], vars: { private_address: '10.20.0.2' } },
    db1: { address: '10.20.0.31', groups: ['postgres'], bastion: 'bastion' },
  },
  groups: {
    bastion: { vars: { ssh_allow_from: ['198.51.100.0/24', '10.99.0.0/24'], firewall: { allow: [WG_OPENING] }, vpn_peers: [ALICE, BOB], ...bastionVars } },
  },
});

const tasksOf = (bastionVars: Record<string, unknown> = {}, opts: Parameters<typeof contextFor>[3] = {}, address?: string) =>
  role.tasks(contextFor(vpnVars, fakeInventory(inventoryWith(bastionVars, address)), 'bastion', opts));
const params = (t: Task) => t.params as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const byModule = (tasks: Task[], name: string) => tasks.filter((t) => t.module.name === name);
const template = (tasks: Task[], src: string) => params(byModule(tasks, 'files.template').find((t) => params(t).src === src)!);

async function render(src: string, vars: Record<string, unknown>): Promise<string> {
  return renderer.renderFile(join(REPO, 'roles', 'vpn'), src, { vars, host: { name: 'bastion', address: '203.0.113.10', groups: ['bastion'] }, facts: {} });
}

describe('vpn tasks', () => {
  it('no operators, no VPN: one skipped task with the reason', () => {
    const tasks = tasksOf({ vpn_peers: [] });
    expect(tasks.map((t) => [t.module.name, params(t).reason])).toEqual([['meta.skip', 'no vpn_peers in the inventory: there is no operator to serve']]);
  });

  it('the key is made on the bastion (wireguard.key), before the config that PostUp reads it from', () => {
    const tasks = tasksOf();
    const names = tasks.map((t) => t.module.name);
    expect(params(byModule(tasks, 'wireguard.key')[0])).toEqual({ privateKey: '/etc/wireguard/wg0.key', publicKey: '/etc/wireguard/wg0.pub' });
    expect(names.indexOf('wireguard.key')).toBeLessThan(tasks.findIndex((t) => params(t).src === 'wg.conf.hbs'));
    expect(template(tasks, 'wg.conf.hbs')).toMatchObject({ dest: '/etc/wireguard/wg0.conf', mode: '0600' });
    expect(tasks.find((t) => params(t).src === 'wg.conf.hbs')!.notify).toContain('reload wireguard');
    expect(byModule(tasks, 'systemd.service').map((t) => params(t).name)).toContain('wg-quick@wg0');
  });

  it('wireguard-go only where the kernel has no WireGuard: a read-only guard', () => {
    const t = params(tasksOf().find((x) => x.name === 'wireguard-go where the kernel has no WireGuard')!);
    expect(t.cmd).toMatch(/apt-get install .*wireguard-go$/);
    expect(t.unless).toBe("[ -d /sys/module/wireguard ] || modinfo wireguard >/dev/null 2>&1 || dpkg-query -W -f='${Status}' wireguard-go 2>/dev/null | grep -q 'ok installed'");
  });

  it('vpn_ssh_only installs its own nftables table, commit-confirmed; off, it is removed and its table dropped', () => {
    const on = params(byModule(tasksOf({ vpn_ssh_only: true, vpn_ssh_also_from: ['192.0.2.1/32'] }), 'confirm.files')[0]);
    expect(on).toMatchObject({ validate: 'nft -c -f %s', activate: 'systemctl reload-or-restart nftables', within: 60 });
    expect(on.files).toEqual([expect.objectContaining({ path: '/etc/nftables.d/vpn.nft', template: 'vpn.nft.hbs', vars: { alsoFrom: ['192.0.2.1/32'] } })]);
    expect(on.rollback).toMatch(/^\[ -e \/etc\/nftables\.d\/vpn\.nft \] \|\| nft delete table inet infra_vpn/);
    const off = byModule(tasksOf(), 'files.absent').find((t) => params(t).path === '/etc/nftables.d/vpn.nft')!;
    expect(off.notify).toContain('drop the vpn ssh filter');
  });

  it('every task re-baselines AIDE (what it writes under /etc is watched)', () => {
    for (const t of tasksOf()) expect(t.notify).toContain('update aide database');
    expect(role.handlers!['update aide database'].module.name).toBe('aide.update');
  });
});

describe('vpn: refused before anything changes', () => {
  it.each([
    ['no udp opening in the hardening firewall', { firewall: { allow: [] } }, /does not open udp 51820.*no operator could reach WireGuard/],
    ['ssh_allow_from without the VPN subnet', { ssh_allow_from: ['198.51.100.0/24'] }, /does not include the VPN subnet 10\.99\.0\.0\/24/],
    ['vpn_ssh_only while infra connects from outside, nothing in vpn_ssh_also_from', { vpn_ssh_only: true }, /would lock infra out of bastion: it connects to 203\.0\.113\.10/],
    ['a peer outside the VPN subnet', { vpn_peers: [{ ...ALICE, address: '10.98.0.2' }] }, /alice's address 10\.98\.0\.2 is not a free address of the VPN subnet/],
    ['a peer on the bastion\'s own address', { vpn_peers: [{ ...ALICE, address: '10.99.0.1' }] }, /not a free address/],
    ['two peers with one address', { vpn_peers: [ALICE, { ...BOB, address: ALICE.address }] }, /bob and alice have the same address/],
    ['two peers with one key', { vpn_peers: [ALICE, { ...BOB, public_key: ALICE.public_key }] }, /bob and alice have the same public key/],
  ])('%s', (_what, vars, message) => {
    expect(() => tasksOf(vars)).toThrow(UserError);
    expect(() => tasksOf(vars)).toThrow(message);
  });

  it('vpn_ssh_only is fine when infra comes through the tunnel, or from vpn_ssh_also_from', () => {
    expect(() => tasksOf({ vpn_ssh_only: true }, {}, '10.99.0.1')).not.toThrow();
    expect(() => tasksOf({ vpn_ssh_only: true, vpn_ssh_also_from: ['192.0.2.1/32'] })).not.toThrow();
  });

  it('a disabled hardening firewall needs no opening', () => {
    expect(() => tasksOf({ firewall: { enabled: false, allow: [] } })).not.toThrow();
  });

  it('the schema refuses what is not a WireGuard key or an address', () => {
    for (const bad of [{ vpn_peers: [{ ...ALICE, public_key: 'ssh-ed25519 AAAA' }] }, { vpn_peers: [{ ...ALICE, address: '10.99.0.2/32' }] }, { vpn_address: '10.99.0.1' }, { vpn_interface: 'wg 0' }]) {
      expect(vpnVars.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});

describe('vpn templates', () => {
  it('wg0.conf: the interface and every peer; no private key in it', async () => {
    const v = vpnVars.parse({ vpn_peers: [ALICE, BOB] });
    const conf = await render('wg.conf.hbs', v);
    const lines = conf.split('\n');
    expect(lines).toEqual(expect.arrayContaining(['[Interface]', 'Address = 10.99.0.1/24', 'ListenPort = 51820', 'PostUp = wg set %i private-key /etc/wireguard/%i.key']));
    expect(lines).toEqual(expect.arrayContaining([`PublicKey = ${ALICE.public_key}`, 'AllowedIPs = 10.99.0.2/32', `PublicKey = ${BOB.public_key}`, 'AllowedIPs = 10.99.0.3/32']));
    expect(conf).not.toMatch(/^PrivateKey/m);
  });

  it('vpn.nft: established, loopback and the tunnel pass; SSH from anywhere else is dropped', async () => {
    const nft = (await render('vpn.nft.hbs', { ...vpnVars.parse({}), alsoFrom: ['172.28.77.1/32'] })).split('\n').map((l) => l.trim());
    const body = nft.slice(nft.indexOf('chain input {'));
    expect(body).toEqual([
      'chain input {',
      'type filter hook input priority filter - 10; policy accept;',
      'ct state established,related accept',
      'iifname "lo" accept',
      'iifname "wg0" accept',
      'ip saddr 172.28.77.1/32 tcp dport 22 accept',
      'tcp dport 22 drop',
      '}',
      '}',
      '',
    ]);
  });

  it('the metrics script names peers by their public key', async () => {
    const sh = await render('wireguard-metrics.sh.hbs', vpnVars.parse({ vpn_peers: [ALICE] }));
    expect(sh).toContain(`    ${ALICE.public_key}) echo alice ;;`);
    expect(sh).not.toMatch(/undefined/);
  });
});

describe('subnetOf', () => {
  it.each([
    ['10.99.0.1/24', '10.99.0.0/24'],
    ['10.99.7.200/20', '10.99.0.0/20'],
    ['192.168.1.1/32', '192.168.1.1/32'],
    ['172.16.5.4/0', '0.0.0.0/0'],
  ])('%s → %s', (a, want) => expect(subnetOf(a)).toBe(want));
});

describe('the shipped inventories', () => {
  it.each(['lab', 'prod'])('%s: the bastion gets its VPN tasks, no check refuses them', async (env) => {
    const inv = await loadInventory(env, { cwd: REPO, decryptor: lockedDecryptor });
    const tasks = role.tasks(contextFor(vpnVars, inv, 'bastion'));
    expect(byModule(tasks, 'wireguard.key')).toHaveLength(1);
  });
});
