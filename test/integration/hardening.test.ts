/**
 * Issues 5 and 21 end to end: playbooks/site.yaml applied through the bastion hardens every
 * host and the bastion, never locks us out (the second apply connects and changes nothing),
 * and each control is verified live: sshd -T, a refused password login, firewall openings per
 * group, fail2ban, unattended-upgrades, sysctl, jump-only forwarding. Then outside judges:
 * Lynis (index >= 85, no warning) and ssh-audit (no fail; only the documented warnings) on
 * every host, security updates that arrive (and are counted for Prometheus), AIDE (clean
 * after a run of ours, a hand edit shows up), and the operators' WireGuard VPN on the bastion
 * (a container acting as an operator: handshake, SSH through the tunnel, refused without it).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { generateKeyPairSync } from 'node:crypto';
import { startFleet, type Fleet } from './fleet.js';
import { infra, taskResults, REPO } from './helpers/cli.js';

const run = promisify(execFile);
const SITE = join(REPO, 'playbooks/site.yaml');
let fleet: Fleet;
/** site.yaml without its backup plays (written in beforeAll). */
let PLAYBOOK: string;
let firstApply: Awaited<ReturnType<typeof infra>>;

const gatewayOf = (ip: string) => ip.replace(/\.\d+$/, '.1');
const subnetOf = (ip: string) => ip.replace(/\.\d+$/, '.0/24');
const HOSTS = ['bastion', 'api1', 'db1'];
const TEXTFILE = '/var/lib/prometheus/node-exporter';

/** A WireGuard key pair made here (X25519, raw 32 bytes, base64): the operator's laptop. */
function wgKeyPair(): { pub: string; priv: string } {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return {
    pub: publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64'),
    priv: privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32).toString('base64'),
  };
}
const operator = wgKeyPair();
const timings: Record<string, number> = {};
const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
  const t0 = Date.now();
  try {
    return await f();
  } finally {
    timings[what] = Math.round((Date.now() - t0) / 100) / 10;
  }
};
/** Every group a play of site.yaml targets exists in the fleet (empty when it has no such host). */
const siteGroups = (parse(readFileSync(SITE, 'utf8')) as { hosts: string }[]).flatMap((p) => p.hosts.split(/[:,]/)).filter((h) => /^[A-Za-z_][\w-]*$/.test(h) && h !== 'all');

beforeAll(async () => {
  fleet = await timed('fleet start', () => startFleet({
    tun: true,
    targets: [
      // Not in group api: site.yaml's api play would deploy the application there.
      { name: 'api1', groups: ['app'] },
      { name: 'db1', groups: ['postgres'] },
    ],
    groupVars: {
      ...Object.fromEntries(siteGroups.map((g) => [g, {}])),
      all: { admin_users: [{ name: 'ops', keys: [] }] },
      postgres: { firewall: { allow: [{ port: 5432, from: ['app'], comment: 'postgresql' }] } },
    },
  }));
  // The published port reaches the bastion from the fleet network's gateway.
  await fleet.exec('bastion', 'true');
  const { writeFile, mkdir, mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  await mkdir(join(fleet.inventoryDir, 'group_vars'), { recursive: true });
  // SSH to the bastion: from the gateway (infra), the fleet network and the VPN; with
  // vpn_ssh_only, the fleet network only through the tunnel (the operator, api1).
  const gw = `${gatewayOf(fleet.bastion.ip)}/32`;
  await writeFile(
    join(fleet.inventoryDir, 'group_vars', 'bastion.yaml'),
    [
      `ssh_allow_from: [${gw}, ${subnetOf(fleet.bastion.ip)}, 10.99.0.0/24]`,
      'firewall: { allow: [ { port: 51820, proto: udp, from: [any], comment: wireguard } ] }',
      `vpn_peers: [ { name: operator, public_key: "${operator.pub}", address: 10.99.0.2 } ]`,
      'vpn_ssh_only: true',
      `vpn_ssh_also_from: [${gw}]`,
      '',
    ].join('\n'),
  );
  // The image is up to date, its sources with the security suite (test/image/build.sh). Here
  // each host is a minimal image without the suite (debootstrap's sources) and one package below
  // its security fix: the role must add the suite and the catch-up install that fix.
  await Promise.all(
    HOSTS.map(async (h) => {
      const r = await fleet.exec(h, "sed -i '/ bookworm-security /d' /etc/apt/sources.list && ! grep -rq -- -security /etc/apt/sources.list /etc/apt/sources.list.d");
      if (r.code !== 0) throw new Error(`${h}: the security suite is still in the sources: ${r.stderr}`);
      await belowSecurityFix(h, CATCH_UP_PACKAGE);
    }),
  );
  // site.yaml without its backup plays: restic needs a backup host and a vaulted repository
  // password this fleet does not have (test/integration/roles/restic.test.ts proves them).
  PLAYBOOK = join(await mkdtemp(join(tmpdir(), 'hardening-site-')), 'site.yaml');
  const plays = (parse(readFileSync(SITE, 'utf8')) as { roles?: string[] }[]).filter((p) => !p.roles?.includes('restic'));
  await writeFile(PLAYBOOK, stringify(plays));
  // Generous: on a 2-core machine shared with other test runs this takes minutes (see timings).
  firstApply = await timed('first apply', () => infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json', '--verify'], { timeoutMs: 1_800_000 }));
}, 2_000_000);
afterAll(async () => {
  console.log(`hardening.test.ts timings (s): ${JSON.stringify(timings)}; CPU used by the fleet (s): ${await fleetCpuSeconds()}`);
  await fleet?.down();
});

/** CPU time the fleet's containers used (cgroup v1 cpuacct), a measure the machine's load does not inflate. */
async function fleetCpuSeconds(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const ids = (await run('docker', ['ps', '-q', '--no-trunc', '--filter', `label=infra-test.pid=${process.pid}`])).stdout.trim().split('\n').filter(Boolean);
  const used = await Promise.all(ids.map((id) => readFile(`/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`, 'utf8').then(Number, () => NaN)));
  return used.every(Number.isFinite) ? String(Math.round(used.reduce((a, b) => a + b, 0) / 1e9)) : 'unknown (no cgroup v1 cpuacct here)';
}

/** A package with a security fix newer than the main archive's version (the apt.prom test uses it too). */
const CATCH_UP_PACKAGE = 'libexpat1';

/** Installs the main archive's version of `pkg` on `host`: one pending security update. */
async function belowSecurityFix(host: string, pkg: string): Promise<void> {
  const main = `$(apt-cache madison ${pkg} | awk -F'|' '$3 ~ /bookworm\\/main/ { gsub(/ /, "", $2); print $2; exit }')`;
  const r = await fleet.exec(
    host,
    `apt-get -q update >/dev/null && v=${main} && [ -n "$v" ] && [ "$v" != "$(dpkg-query -W -f '\${Version}' ${pkg})" ] ` +
      `&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades "${pkg}=$v" 2>&1`,
  );
  if (r.code !== 0) throw new Error(`${host}: could not put ${pkg} below its security fix (is the main archive's version older than the installed one?):\n${r.stdout}${r.stderr}`);
}

/** Samples of a node exporter textfile: `name{labels}` → value. */
async function textfile(host: string, file: string): Promise<Map<string, number>> {
  const r = await fleet.exec(host, `cat ${TEXTFILE}/${file}`);
  expect(r.code, `${host}: ${TEXTFILE}/${file}: ${r.stderr}`).toBe(0);
  const samples = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) samples.set(m[1], Number(m[2]));
  }
  return samples;
}

/** Polls `cmd` once a second until its (trimmed) output is `ok`, or fails with what it last printed. */
async function until(host: string, cmd: string, ok: (out: string) => boolean, seconds: number): Promise<string> {
  let out = '';
  for (let i = 0; i < seconds; i++) {
    out = (await fleet.exec(host, cmd)).stdout.trim();
    if (ok(out)) return out;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`${host}: \`${cmd}\` never got there; last output:\n${out}`);
}

/** No re-baseline queued after a dpkg run (the aide hook's 1-minute timer) nor running. */
const aideSettled = (host: string) =>
  until(
    host,
    "systemctl list-units --all --no-legend 'infra-aide-after-dpkg*' | grep -c . ; systemctl is-active infra-aide-update.service",
    (out) => /^0\n(inactive|failed)$/.test(out),
    240,
  );

const sshdT = async (host: string) => (await fleet.exec(host, 'sshd -T')).stdout;

describe('hardening + bastion through the bastion', () => {
  it('first apply succeeds on every host', () => {
    const slowest = taskResults(firstApply)
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 8)
      .map((e) => `${e.host} ${Math.round(e.ms / 1000)}s ${e.task.slice(0, 70)}`);
    console.log(`first apply: ${Math.round(firstApply.durationMs / 1000)} s; slowest tasks:\n  ${slowest.join('\n  ')}`);
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
      expect(t).toMatch(/^macs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com$/m);
      expect(t).toMatch(/^tcpkeepalive no$/m);
    }
    expect(await sshdT('api1')).toMatch(/^maxsessions 2$/m);
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
    // Two listeners on db1: 5432 is opened to group app, 5433 to nobody.
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

});

describe('security updates that arrive', () => {
  it('the security suite is in the apt sources; unattended-upgrade allows its origin and apt sees it', async () => {
    for (const h of HOSTS) {
      const policy = await fleet.exec(h, 'apt-cache policy');
      expect(policy.stdout, h).toMatch(/http:\/\/security\.debian\.org\/debian-security bookworm-security\/main/);
      expect(policy.stdout, h).toMatch(/release .*o=Debian,.*n=bookworm-security,l=Debian-Security/);
    }
    const uu = await fleet.exec('db1', 'unattended-upgrade --dry-run -d 2>&1');
    expect(uu.code).toBe(0);
    expect(uu.stdout).toMatch(/Allowed origins are: origin=Debian,codename=bookworm-security,label=Debian-Security/);
  }, 180_000); // unattended-upgrade --dry-run reads every package's policy: tens of seconds on a loaded machine

  it('the first apply installed the pending security updates (the catch-up), none are left', async () => {
    for (const h of HOSTS) {
      const log = await fleet.exec(h, 'cat /var/log/unattended-upgrades/unattended-upgrades.log');
      expect(log.stdout, h).toMatch(new RegExp(`Packages that will be upgraded: .*\\b${CATCH_UP_PACKAGE}\\b`));
      expect(log.stdout, h).toMatch(/All upgrades installed/);
      expect((await fleet.exec(h, 'apt list --upgradable 2>/dev/null | grep -c -- -security')).stdout.trim(), h).toBe('0');
    }
  });
});

describe('ssh-audit: no failure; the only warnings are the two documented ones', () => {
  /** Debian 12's ssh-audit 2.5.0 (2021), and why each of its remaining warnings stays (README). */
  const ACCEPTED = [
    // Our decision: post-quantum hybrid KEX, OpenSSH's default since 9.0; newer ssh-audit
    // warns the other way (classical KEX "does not provide protection against post-quantum attacks").
    /^\(kex\) sntrup761x25519-sha512@openssh\.com +-- \[warn\] using experimental algorithm$/,
    // The Terrapin (CVE-2023-48795) strict-KEX marker Debian's OpenSSH 9.2p1-2+deb12u2 added:
    // newer than ssh-audit 2.5.0's database, and removing it would reopen Terrapin.
    /^\(kex\) kex-strict-s-v00@openssh\.com +-- \[warn\] unknown algorithm$/,
  ];

  it('on every host (audited from itself: 127.0.0.1, which fail2ban ignores)', async () => {
    await timed('ssh-audit', async () => {
      await Promise.all(HOSTS.map((h) => fleet.exec(h, 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ssh-audit >/dev/null 2>&1')));
      for (const h of HOSTS) {
        const out = (await fleet.exec(h, 'ssh-audit -n -l warn 127.0.0.1')).stdout;
        expect(out, h).toMatch(/kex-strict-s-v00@openssh\.com/); // it did talk to sshd
        const findings = out.split('\n').filter((l) => /\[(fail|warn)\]/.test(l));
        expect(findings.filter((l) => /\[fail\]/.test(l)), `${h}:\n${out}`).toEqual([]);
        expect(findings.filter((l) => !ACCEPTED.some((a) => a.test(l))), `${h}:\n${out}`).toEqual([]);
        // No MAC, cipher or host key left to remove (issue 21: the non-ETM MACs were).
        expect(out.split('\n').filter((l) => /^\(rec\) -/.test(l) && !/sntrup761/.test(l)), h).toEqual([]);
      }
    });
  }, 300_000);
});

describe('Lynis, weekly, judged now: hardening index >= 85 and no warning on the bastion and on a target', () => {
  // The bastion and one target: api1 and db1 are the same kind of host to Lynis (they differ in
  // firewall openings only), and a scan is ≈ 3 min of one busy core.
  const SCANNED = ['bastion', 'db1'];
  it('infra-lynis.service (the weekly timer\'s job) scans and exports the index and the warnings', async () => {
    const results = await timed('lynis (bastion and db1 in parallel)', () =>
      Promise.all(
        SCANNED.map(async (h) => {
          const r = await fleet.exec(h, 'systemctl start infra-lynis.service');
          const warnings = (await fleet.exec(h, "grep '^warning\\[\\]=' /var/log/lynis-report.dat || true")).stdout.trim();
          return { h, code: r.code, warnings, samples: await textfile(h, 'lynis.prom') };
        }),
      ),
    );
    for (const { h, code, warnings, samples } of results) {
      console.log(`${h}: Lynis hardening index ${samples.get('lynis_hardening_index')}, warnings ${samples.get('lynis_warnings')}, suggestions ${samples.get('lynis_suggestions')}`);
      expect(code, h).toBe(0);
      expect(samples.get('lynis_hardening_index'), h).toBeGreaterThanOrEqual(85);
      expect([h, samples.get('lynis_warnings'), warnings]).toEqual([h, 0, '']);
      expect(samples.get('lynis_last_run_timestamp_seconds'), h).toBeGreaterThan(Date.now() / 1000 - 3600);
    }
  }, 1_500_000);

  it('the profile skips only what a container cannot have, each with its reason', async () => {
    const prf = (await fleet.exec('db1', 'cat /etc/lynis/custom.prf')).stdout.split('\n');
    const skips = prf.filter((l) => l.startsWith('skip-test='));
    expect(skips).toEqual(expect.arrayContaining(['skip-test=KRNL-6000:kernel.kptr_restrict', 'skip-test=USB-3000', 'skip-test=ACCT-9628']));
    for (const l of skips) expect(prf[prf.indexOf(l) - 1], l).toMatch(/^# .*container.*\(docker\)/);
    // Lynis itself honoured it.
    expect((await fleet.exec('db1', "grep -c 'Skipped test USB-3000\\|skipped by profile' /var/log/lynis.log || true")).stdout.trim()).not.toBe('0');
    // The CA bundle is not asked about file by file (package files are never judged anyway).
    expect(prf).toContain('ssl-certificate-paths-to-ignore=/etc/letsencrypt/archive:/usr/share/ca-certificates');
    expect((await fleet.exec('db1', "grep -c 'skipping directory (/usr/share/ca-certificates' /var/log/lynis.log || true")).stdout.trim()).not.toBe('0');
  });
});

describe('pending updates for Prometheus', () => {
  it('apt.prom counts what apt counts: a package downgraded below its security fix is one pending security update', async () => {
    const before = await textfile('api1', 'apt.prom');
    expect(before.get('apt_upgrades_pending{origin="",arch=""}')).toBe(0);
    expect(before.get('node_reboot_required')).toBe(0);
    expect(before.get('apt_update_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 7200);
    // The main archive's libexpat1 is older than the security suite's.
    await belowSecurityFix('api1', CATCH_UP_PACKAGE);
    // The dpkg hook re-exports within seconds.
    const pending = await until('api1', `grep -- '-security' ${TEXTFILE}/apt.prom || true`, (o) => o !== '', 60);
    const counted = (await fleet.exec('api1', 'apt list --upgradable 2>/dev/null | grep -c -- -security')).stdout.trim();
    expect(pending).toMatch(new RegExp(`^apt_upgrades_pending\\{origin="[^"]*Debian-Security:12/[a-z]*stable-security[^"]*",arch="amd64"\\} ${counted}$`));
    expect(counted).toBe('1');
    // And unattended-upgrades sees it from the security origin.
    const uu = await fleet.exec('api1', 'unattended-upgrade --dry-run -d 2>&1');
    expect(uu.stdout).toMatch(/Checking: libexpat1 \(\[<Origin component:'main' archive:'[a-z]*stable-security' origin:'Debian' label:'Debian-Security'/);
    expect(uu.stdout).toMatch(/Packages that will be upgraded: libexpat1/);
  }, 300_000);
});

describe('WireGuard for operators on the bastion (role vpn)', () => {
  let serverPub = '';

  it('the server key was made on the bastion, stays there (0600 root), and its public half is published', async () => {
    const key = await fleet.exec('bastion', 'stat -c "%a %U" /etc/wireguard/wg0.key && wg pubkey < /etc/wireguard/wg0.key && cat /etc/wireguard/wg0.pub');
    const [stat, derived, published] = key.stdout.trim().split('\n');
    expect(stat).toBe('600 root');
    expect(published).toBe(derived);
    serverPub = published;
    // Never in the configuration infra rendered (nor anywhere infra printed it).
    expect((await fleet.exec('bastion', 'cat /etc/wireguard/wg0.conf')).stdout).not.toContain('PrivateKey');
    const priv = (await fleet.exec('bastion', 'cat /etc/wireguard/wg0.key')).stdout.trim();
    expect(firstApply.stdout).not.toContain(priv);
    // The kernel's WireGuard where it has the module, wireguard-go (a tun device) where not.
    const kind = (await fleet.exec('bastion', "ip -d link show wg0 | grep -oE 'wireguard|tun' | head -n 1; [ -d /sys/module/wireguard ] && echo module || echo no-module; dpkg-query -W -f='${Status}' wireguard-go 2>/dev/null | grep -c 'ok installed'")).stdout.trim();
    expect(['wireguard\nmodule\n0', 'tun\nno-module\n1']).toContain(kind);
    expect((await fleet.exec('bastion', 'wg show wg0 peers')).stdout.trim()).toBe(operator.pub);
  });

  it('an operator without the tunnel is refused; with it, the handshake completes and SSH answers', async () => {
    const bastionIp = fleet.bastion.ip;
    const probe = async (addr: string) =>
      (await fleet.exec('api1', `timeout 5 bash -c 'echo > /dev/tcp/${addr}/22' && echo open || echo closed`)).stdout.trim();
    // api1 is in ssh_allow_from (the fleet network): only vpn_ssh_only keeps it out.
    expect(await probe(bastionIp)).toBe('closed');

    await timed('operator wireguard install', () =>
      fleet.exec('api1', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wireguard-tools wireguard-go >/dev/null 2>&1'),
    );
    const conf = [
      '[Interface]',
      `PrivateKey = ${operator.priv}`,
      'Address = 10.99.0.2/32',
      '',
      '[Peer]',
      `PublicKey = ${serverPub}`,
      `Endpoint = ${bastionIp}:51820`,
      'AllowedIPs = 10.99.0.1/32',
      'PersistentKeepalive = 5',
      '',
    ].join('\n');
    const up = await fleet.exec('api1', `umask 077 && mkdir -p /etc/wireguard && printf '%s' '${conf}' > /etc/wireguard/op.conf && wg-quick up op 2>&1`);
    expect(up.code, up.stdout).toBe(0);
    await until('api1', "timeout 3 bash -c 'echo > /dev/tcp/10.99.0.1/22' && echo up", (o) => o === 'up', 30);
    const handshake = async (h: string, i: string) => Number((await fleet.exec(h, `wg show ${i} latest-handshakes`)).stdout.trim().split(/\s+/)[1] ?? 0);
    expect(await handshake('api1', 'op')).toBeGreaterThan(0);
    expect(await handshake('bastion', 'wg0')).toBeGreaterThan(0);

    // SSH through the tunnel: a real login with infra's key.
    await fleet.exec('api1', 'install -d -m 0700 /root/.ssh');
    const { readFile } = await import('node:fs/promises');
    const key = await readFile(fleet.keyPath, 'utf8');
    await fleet.exec('api1', `umask 077 && printf '%s' '${key}' > /root/.ssh/fleet_key`);
    const login = await fleet.exec('api1', 'ssh -i /root/.ssh/fleet_key -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 admin@10.99.0.1 hostname 2>&1');
    expect(login.stdout.trim().split('\n').pop()).toBe('bastion');
    // Still refused outside the tunnel, now that the tunnel is up.
    expect(await probe(bastionIp)).toBe('closed');

    // Handshakes per operator for Prometheus.
    await fleet.exec('bastion', 'systemctl start infra-wireguard-metrics.service');
    const wg = await textfile('bastion', 'wireguard.prom');
    expect(wg.get('wireguard_peer_last_handshake_timestamp_seconds{interface="wg0",peer="operator"}')).toBeGreaterThan(Date.now() / 1000 - 600);
  }, 300_000);
});

describe('idempotence', () => {
  it('a second apply still connects and changes nothing; plan after it: exit 0', async () => {
    const second = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json'], { timeoutMs: 300_000 });
    expect(second.code).toBe(0);
    expect(second.recap.every((r) => !r.unreachable)).toBe(true);
    const changed = second.events.filter((e) => e.type === 'task.result' && e.status === 'changed');
    expect(changed).toEqual([]);
    const plan = await infra(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--detailed-exitcode', '--json'], { timeoutMs: 300_000 });
    expect(plan.code).toBe(0);
  }, 600_000);
});

describe('AIDE: a run of ours does not alarm, a hand edit does', () => {
  it('after apply (and the re-baselines dpkg runs queued), the daily check finds every host clean', async () => {
    await timed('aide check (3 hosts)', () =>
      Promise.all(
        HOSTS.map(async (h) => {
          await aideSettled(h);
          const r = await fleet.exec(h, 'systemctl start infra-aide-check.service; cat /var/log/aide/infra-aide.log');
          const m = await textfile(h, 'aide.prom');
          expect([h, m.get('aide_up'), m.get('aide_differences{type="added"}'), m.get('aide_differences{type="removed"}'), m.get('aide_differences{type="changed"}')], r.stdout).toEqual([h, 1, 0, 0, 0]);
          expect(m.get('aide_last_check_timestamp_seconds'), h).toBeGreaterThan(Date.now() / 1000 - 600);
        }),
      ),
    );
    expect((await fleet.exec('db1', 'systemctl is-enabled infra-aide-check.timer')).stdout.trim()).toBe('enabled');
  }, 600_000);

  it('infra changing a watched file (the login banner) re-baselines: the check stays clean', async () => {
    const r = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '-l', 'db1', '-e', 'login_banner=Authorized access only (changed by infra).', '--json'], { timeoutMs: 300_000 });
    expect(r.code).toBe(0);
    const handlers = taskResults(r, 'db1').filter((e) => e.handler).map((e) => [e.task, e.status]);
    expect(handlers).toContainEqual(['aide.update re-baseline the AIDE database', 'changed']);
    expect((await fleet.exec('db1', 'cat /etc/issue.net')).stdout).toMatch(/changed by infra/);
    await fleet.exec('db1', 'systemctl start infra-aide-check.service');
    const m = await textfile('db1', 'aide.prom');
    expect([m.get('aide_differences{type="added"}'), m.get('aide_differences{type="removed"}'), m.get('aide_differences{type="changed"}')]).toEqual([0, 0, 0]);
  }, 300_000);

  it('a hand edit shows up: in the check, in the journal, and for Prometheus', async () => {
    await fleet.exec('db1', "printf '# hand edit\n' > /etc/sudoers.d/zz-hand-edit && chmod 0440 /etc/sudoers.d/zz-hand-edit");
    await fleet.exec('db1', 'systemctl start infra-aide-check.service');
    const m = await textfile('db1', 'aide.prom');
    expect(m.get('aide_differences{type="added"}')).toBe(1);
    expect((await fleet.exec('db1', 'cat /var/log/aide/infra-aide.log')).stdout).toMatch(/\/etc\/sudoers\.d\/zz-hand-edit/);
    expect((await fleet.exec('db1', 'journalctl -t infra-aide --no-pager -o cat')).stdout).toMatch(/Added entries:\s+1/);
    // AIDE's own verdict, a bit mask: 1 = new files (here 5: the directory changed too, 4).
    const direct = Number((await fleet.exec('db1', 'aide --config /etc/aide/aide.conf --check >/dev/null; echo $?')).stdout.trim());
    expect([direct & 1, direct < 14]).toEqual([1, true]);
  }, 300_000);
});
