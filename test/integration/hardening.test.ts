/**
 * Issue 5 end to end: playbooks/site.yaml applied through the bastion hardens every host
 * and the bastion, never locks us out (the second apply connects and changes nothing), and
 * each control is verified live: sshd -T, a refused password login, firewall openings per
 * group, fail2ban, unattended-upgrades, sysctl, jump-only forwarding.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startFleet, type Fleet } from './fleet.js';
import { infra, taskResults, REPO } from './helpers/cli.js';

const run = promisify(execFile);
const SITE = join(REPO, 'playbooks/site.yaml');
let fleet: Fleet;
let firstApply: Awaited<ReturnType<typeof infra>>;

const gatewayOf = (ip: string) => ip.replace(/\.\d+$/, '.1');
/** Every group a play of site.yaml targets exists in the fleet (empty when it has no such host). */
const siteGroups = (parse(readFileSync(SITE, 'utf8')) as { hosts: string }[]).map((p) => p.hosts).filter((h) => /^[A-Za-z_][\w-]*$/.test(h) && h !== 'all');

beforeAll(async () => {
  fleet = await startFleet({
    targets: [
      { name: 'api1', groups: ['api'] },
      { name: 'db1', groups: ['postgres'] },
    ],
    groupVars: {
      ...Object.fromEntries(siteGroups.map((g) => [g, {}])),
      all: { admin_users: [{ name: 'ops', keys: [] }] },
      postgres: { firewall: { allow: [{ port: 5432, from: ['api'], comment: 'postgresql' }] } },
    },
  });
  // The published port reaches the bastion from the fleet network's gateway.
  await fleet.exec('bastion', 'true');
  const { writeFile, mkdir } = await import('node:fs/promises');
  await mkdir(join(fleet.inventoryDir, 'group_vars'), { recursive: true });
  await writeFile(join(fleet.inventoryDir, 'group_vars', 'bastion.yaml'), `ssh_allow_from: [${gatewayOf(fleet.bastion.ip)}/32]\n`);
  firstApply = await infra(['apply', SITE, '-i', fleet.inventoryDir, '--json', '--verify'], { timeoutMs: 600_000 });
}, 700_000);
afterAll(async () => {
  await fleet?.down();
});

const sshdT = async (host: string) => (await fleet.exec(host, 'sshd -T')).stdout;

describe('hardening + bastion through the bastion', () => {
  it('first apply succeeds on every host', () => {
    const failed = firstApply.events.filter((e) => e.type === 'task.result' && e.status === 'failed');
    expect(failed).toEqual([]);
    expect(firstApply.code).toBe(0);
    expect(firstApply.recap.map((r) => r.host).sort()).toEqual(['api1', 'bastion', 'db1']);
  });

  it('sshd -T shows every hardened setting', async () => {
    for (const h of ['api1', 'db1', 'bastion']) {
      const t = await sshdT(h);
      expect(t).toMatch(/^passwordauthentication no$/m);
      expect(t).toMatch(/^kbdinteractiveauthentication no$/m);
      expect(t).toMatch(/^maxauthtries 3$/m);
      expect(t).toMatch(/^x11forwarding no$/m);
      expect(t).toMatch(/^permitrootlogin no$/m); // an admin user exists and infra connects as admin
      expect(t).toMatch(/^ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com/m);
      expect(t).toMatch(/^kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256/m);
      expect(t).toMatch(/^logingracetime 30$/m);
      expect(t).toMatch(/^clientaliveinterval 300$/m);
    }
    expect(await sshdT('api1')).toMatch(/^allowtcpforwarding no$/m);
    const bastion = await sshdT('bastion');
    expect(bastion).toMatch(/^allowtcpforwarding local$/m);
    expect(bastion).toMatch(new RegExp(`^permitopen .*${fleet.targets[0].ip.replace(/\./g, '\\.')}:22`, 'm'));
  });

  it('creates admin users with a sudoers drop-in that visudo accepts', async () => {
    expect((await fleet.exec('api1', 'id -un ops')).stdout.trim()).toBe('ops');
    const sudoers = await fleet.exec('api1', 'visudo -cf /etc/sudoers.d/90-infra-admins && cat /etc/sudoers.d/90-infra-admins');
    expect(sudoers.code).toBe(0);
    expect(sudoers.stdout).toMatch(/^ops ALL=\(ALL:ALL\) NOPASSWD: ALL$/m);
  });

  it('a password login is refused: the server offers publickey only', async () => {
    const err = await run('ssh', [
      '-p', String(fleet.bastion.port), '-o', 'BatchMode=yes', '-o', 'PubkeyAuthentication=no',
      '-o', `UserKnownHostsFile=${join(fleet.inventoryDir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
      'admin@127.0.0.1', 'true',
    ]).catch((e: { stderr: string }) => e);
    expect((err as { stderr: string }).stderr).toMatch(/Permission denied \(publickey\)/);
  });

  it('the firewall opens a port to the allowed group only, and nothing else', async () => {
    const db = fleet.targets.find((t) => t.name === 'db1')!;
    // Two listeners on db1: 5432 is opened to group api, 5433 to nobody.
    await fleet.exec('db1', 'for p in 5432 5433; do (nohup python3 -m http.server $p >/dev/null 2>&1 &) ; done; sleep 1');
    const probe = async (from: string, port: number) =>
      (await fleet.exec(from, `timeout 4 bash -c 'echo > /dev/tcp/${db.ip}/${port}' && echo open || echo closed`)).stdout.trim();
    expect(await probe('api1', 5432)).toBe('open');
    expect(await probe('api1', 5433)).toBe('closed');
    expect(await probe('bastion', 5432)).toBe('closed');
    const ruleset = (await fleet.exec('db1', 'nft list table inet infra_filter')).stdout;
    expect(ruleset).toMatch(/policy drop/);
  });

  it('SSH to a target is open from the bastion only', async () => {
    const api = fleet.targets.find((t) => t.name === 'api1')!;
    const probe = async (from: string) =>
      (await fleet.exec(from, `timeout 4 bash -c 'echo > /dev/tcp/${api.ip}/22' && echo open || echo closed`)).stdout.trim();
    expect(await probe('bastion')).toBe('open');
    expect(await probe('db1')).toBe('closed');
  });

  it('the bastion forwards to SSH ports only (jumps), nothing else', async () => {
    const db = fleet.targets.find((t) => t.name === 'db1')!;
    const common = ['-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${join(fleet.inventoryDir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-i', fleet.keyPath, '-p', String(fleet.bastion.port)];
    const refused = await run('ssh', [...common, '-W', `${db.ip}:5432`, 'admin@127.0.0.1'], { timeout: 15_000 }).catch((e: { stderr: string }) => e);
    expect((refused as { stderr: string }).stderr).toMatch(/administratively prohibited|open failed/);
  });

  it('fail2ban answers for sshd, unattended-upgrade dry-runs, sysctls are live', async () => {
    for (const h of ['api1', 'bastion']) {
      const f2b = await fleet.exec(h, 'fail2ban-client status sshd');
      expect(f2b.code).toBe(0);
      expect(f2b.stdout).toMatch(/Status for the jail: sshd/);
    }
    const uu = await fleet.exec('db1', 'unattended-upgrade --dry-run 2>&1; echo rc=$?');
    expect(uu.stdout).toMatch(/rc=0$/m);
    expect((await fleet.exec('db1', 'sysctl -n net.ipv4.conf.all.rp_filter net.ipv4.tcp_syncookies net.ipv4.conf.all.accept_redirects')).stdout.split('\n').slice(0, 3)).toEqual(['1', '1', '0']);
    expect((await fleet.exec('db1', 'cat /etc/sysctl.d/90-infra-hardening.conf')).stdout).toMatch(/^kernel.kptr_restrict = 2$/m);
    expect((await fleet.exec('bastion', 'fail2ban-client get sshd maxretry')).stdout.trim()).toBe('3');
  });

  it('reports what cannot run in a container as skipped, with the reason', () => {
    const skipped = taskResults(firstApply, 'db1').filter((e) => e.status === 'skipped');
    expect(skipped.map((e) => e.task)).toEqual(expect.arrayContaining([expect.stringContaining('auditd service')]));
    expect(skipped.find((e) => e.task.includes('auditd'))!.reason).toMatch(/container/);
  });

  it('installs the audit rules even where auditd cannot run', async () => {
    expect((await fleet.exec('db1', 'cat /etc/audit/rules.d/90-infra.rules')).stdout).toMatch(/-w \/etc\/sudoers -p wa -k scope/);
  });

  it('a second apply still connects and changes nothing; plan after it: exit 0', async () => {
    const second = await infra(['apply', SITE, '-i', fleet.inventoryDir, '--json'], { timeoutMs: 300_000 });
    expect(second.code).toBe(0);
    expect(second.recap.every((r) => !r.unreachable)).toBe(true);
    const changed = second.events.filter((e) => e.type === 'task.result' && e.status === 'changed');
    expect(changed).toEqual([]);
    const plan = await infra(['plan', SITE, '-i', fleet.inventoryDir, '--detailed-exitcode', '--json'], { timeoutMs: 300_000 });
    expect(plan.code).toBe(0);
  }, 600_000);
});
