/** The apt side of the patch run: what is pending, what is security, what asks for a reboot, the commands. */
import { describe, it, expect } from 'vitest';
import { isSecurityOrigin, needsReboot, parseAfter, parseScan, parseSimulation, parseUnits, runningUnitsCommand, selected, upgradeCommand } from '../../../src/patch/apt.js';

/** `apt-get -s upgrade --with-new-pkgs` on a Debian 12 test container with bookworm-security added (trimmed). */
const DEBIAN = `Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  apt libssl3 perl-base
3 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst perl-base [5.36.0-7+deb12u3] (5.36.0-7+deb12u4 Debian-Security:12/oldstable-security [amd64])
Conf perl-base (5.36.0-7+deb12u4 Debian-Security:12/oldstable-security [amd64])
Inst apt [2.6.1] (2.6.2 Debian-Security:12/oldstable-security [amd64]) [apt-utils:amd64 ]
Inst libssl3 [3.0.20-1~deb12u2] (3.0.22-1~deb12u2 Debian:12.12/oldstable, Debian-Security:12/oldstable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.12/oldstable-updates [all])
Inst infra-patch-demo [1.0] (1.1 infra-lab-Security:lab-security [all])
Inst infra-patch-extra [1.0] (1.1 infra-lab:lab-updates [all])
Conf apt (2.6.2 Debian-Security:12/oldstable-security [amd64])
`;

/** Ubuntu 22.04: a kernel update installs a new image package (no installed version). */
const UBUNTU = `Inst linux-image-5.15.0-105-generic (5.15.0-105.115 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64])
Inst linux-image-generic [5.15.0.102.99] (5.15.0.105.102 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64])
Inst libc6 [2.35-0ubuntu3.6] (2.35-0ubuntu3.7 Ubuntu:22.04/jammy-updates [amd64])
Inst vim-common [2:8.2.3995-1ubuntu2.15] (2:8.2.3995-1ubuntu2.16 Ubuntu:22.04/jammy-updates [all])
Inst libsystemd0:i386 [249.11-0ubuntu3.12] (249.11-0ubuntu3.16 UbuntuESM:22.04/jammy-infra-security [i386])
`;

describe('parseSimulation', () => {
  it('Debian 12: installed → candidate, security from the Debian-Security suite or the lab\'s', () => {
    expect(parseSimulation(DEBIAN).map((u) => [u.name, u.from, u.to, u.security])).toEqual([
      ['perl-base', '5.36.0-7+deb12u3', '5.36.0-7+deb12u4', true],
      ['apt', '2.6.1', '2.6.2', true],
      ['libssl3', '3.0.20-1~deb12u2', '3.0.22-1~deb12u2', true],
      ['tzdata', '2024a-0+deb12u1', '2025b-0+deb12u1', false],
      ['infra-patch-demo', '1.0', '1.1', true],
      ['infra-patch-extra', '1.0', '1.1', false],
    ]);
    expect(parseSimulation(DEBIAN)[2].origins).toEqual(['Debian:12.12/oldstable', 'Debian-Security:12/oldstable-security']);
  });

  it('Ubuntu 22.04: a new kernel image has no installed version; epochs and architectures are kept apart', () => {
    expect(parseSimulation(UBUNTU).map((u) => [u.name, u.from, u.to, u.security, u.reboot])).toEqual([
      ['linux-image-5.15.0-105-generic', null, '5.15.0-105.115', true, true],
      ['linux-image-generic', '5.15.0.102.99', '5.15.0.105.102', true, true],
      ['libc6', '2.35-0ubuntu3.6', '2.35-0ubuntu3.7', false, true],
      ['vim-common', '2:8.2.3995-1ubuntu2.15', '2:8.2.3995-1ubuntu2.16', false, false],
      ['libsystemd0', '249.11-0ubuntu3.12', '249.11-0ubuntu3.16', true, false],
    ]);
  });

  it('selects the security updates only, or all', () => {
    const all = parseSimulation(DEBIAN);
    expect(selected(all, 'security').map((u) => u.name)).toEqual(['perl-base', 'apt', 'libssl3', 'infra-patch-demo']);
    expect(selected(all, 'all')).toHaveLength(6);
  });
});

describe('isSecurityOrigin', () => {
  it.each([
    ['Debian-Security:12/stable-security', true],
    ['Debian-Security:12/oldstable-security', true],
    ['Ubuntu:22.04/jammy-security', true],
    ['UbuntuESMApps:22.04/jammy-apps-security', true],
    ['infra-lab-Security:lab-security', true],
    ['Debian:12.5/stable', false],
    ['Debian:12.5/stable-updates', false],
    ['Ubuntu:22.04/jammy-updates', false],
    ['security-tools:1/stable', false],
    ['stable-security', true],
  ])('%s → %s', (origin, security) => {
    expect(isSecurityOrigin(origin)).toBe(security);
  });
});

describe('needsReboot', () => {
  it.each([
    ['linux-image-6.1.0-21-amd64', true],
    ['linux-image-amd64', true],
    ['libc6', true],
    ['systemd', true],
    ['dbus', true],
    ['libc6-dev', false],
    ['systemd-timesyncd', false],
    ['openssl', false],
  ])('%s → %s', (name, reboot) => expect(needsReboot(name)).toBe(reboot));
});

describe('commands', () => {
  const updates = parseSimulation(UBUNTU);
  it('security only: exactly the installed security packages, with --only-upgrade, configs kept, needrestart listing only', () => {
    expect(upgradeCommand('security', updates)).toBe(
      'DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l apt-get -y -q -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --only-upgrade linux-image-generic libsystemd0',
    );
  });

  it('all: upgrade with new packages (a kernel), removing nothing', () => {
    expect(upgradeCommand('all', updates)).toMatch(/ apt-get .* upgrade --with-new-pkgs$/);
  });

  it('package names reach the shell quoted', () => {
    expect(runningUnitsCommand(['a$(reboot)'])).toContain(`for p in 'a$(reboot)'; do`);
    expect(upgradeCommand('security', [{ name: "x';reboot;'", from: '1', to: '2', origins: [], security: true, reboot: false }])).toContain(`'x'\\'';reboot;'\\'''`);
  });
});

describe('parsers of the scan and of the state after the upgrade', () => {
  it('the scan: updates and a reboot already pending', () => {
    const s = parseScan(`@@infra-patch@@sim\n${DEBIAN}@@infra-patch@@reboot\nrequired\nlinux-image-6.1.0-21-amd64\nlinux-image-6.1.0-21-amd64\n`);
    expect(s.updates).toHaveLength(6);
    expect(s.rebootPending).toEqual(['linux-image-6.1.0-21-amd64']);
    expect(parseScan('@@infra-patch@@sim\n@@infra-patch@@reboot\n').rebootPending).toBeNull();
  });

  it('after: installed versions (not removed ones), the reboot file without its .pkgs', () => {
    const a = parseAfter('@@infra-patch@@dpkg\napt\t2.6.2\tii \nold\t1.0\trc \n@@infra-patch@@reboot\nrequired\n');
    expect([...a.installed]).toEqual([['apt', '2.6.2']]);
    expect(a.rebootPending).toEqual([]);
  });

  it('units: service names only, never dbus or logind', () => {
    expect(parseUnits('ssh.service\ndbus.service\nsystemd-logind.service\n bad name \nnginx.service\n')).toEqual(['ssh.service', 'nginx.service']);
  });
});
