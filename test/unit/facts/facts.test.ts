import { describe, expect, it } from 'vitest';
import { factScript, gatherFacts, parseFactOutput, factSources } from '../../../src/facts/index.js';
import { host } from '../../../src/facts/host.js';
import { os, parseOsRelease } from '../../../src/facts/os.js';
import { kernel } from '../../../src/facts/kernel.js';
import { execFileSync } from 'node:child_process';
import { countCpuList, cpus, memory } from '../../../src/facts/hardware.js';
import { container } from '../../../src/facts/virt.js';
import { network } from '../../../src/facts/network.js';
import { init, uid } from '../../../src/facts/session.js';

const DEBIAN12_OS_RELEASE = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`;
const UBUNTU2204_OS_RELEASE = `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
UBUNTU_CODENAME=jammy
`;
const MEMINFO_DEBIAN = 'MemTotal:        4025580 kB\n';
const MEMINFO_UBUNTU = 'MemTotal:        8131520 kB\n';

describe('fact parsers', () => {
  it.each([
    ['host: debian 12', host, 'db1\ndb1.prod.example.com\n', { hostname: 'db1', fqdn: 'db1.prod.example.com' }],
    ['host: ubuntu 22.04, no domain', host, 'api1\napi1\n', { hostname: 'api1', fqdn: 'api1' }],
    ['host: uname -n already an FQDN', host, 'web1.example.com\n\n', { hostname: 'web1', fqdn: 'web1.example.com' }],
    ['os: debian 12', os, DEBIAN12_OS_RELEASE, { os: { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)', family: 'debian' } }],
    ['os: ubuntu 22.04', os, UBUNTU2204_OS_RELEASE, { os: { id: 'ubuntu', versionId: '22.04', codename: 'jammy', prettyName: 'Ubuntu 22.04.4 LTS', family: 'debian' } }],
    ['os: codename only in VERSION', os, 'ID=debian\nVERSION_ID="11"\nVERSION="11 (bullseye)"\n', { os: { id: 'debian', versionId: '11', codename: 'bullseye', prettyName: '', family: 'debian' } }],
    ['kernel: debian 12', kernel, '6.1.0-18-amd64\nx86_64\n', { kernel: '6.1.0-18-amd64', arch: 'x86_64' }],
    ['kernel: ubuntu 22.04 arm', kernel, '5.15.0-105-generic\naarch64\n', { kernel: '5.15.0-105-generic', arch: 'aarch64' }],
    ['cpus', cpus, '4\n', { cpus: 4 }],
    ['cpus: garbage', cpus, 'nproc: not found\n', {}],
    ['memory: debian 12', memory, MEMINFO_DEBIAN, { memoryMb: 3931 }],
    ['memory: ubuntu 22.04', memory, MEMINFO_UBUNTU, { memoryMb: 7940 }],
    ['container: docker', container, 'docker\n', { container: 'docker' }],
    ['container: lxc', container, 'lxc\n', { container: 'lxc' }],
    ['container: bare metal prints none twice', container, 'none\nnone\n', { container: 'none' }],
    ['container: no systemd-detect-virt', container, 'none\n', { container: 'none' }],
    ['network: debian 12 (docker)', network, '1.1.1.1 via 172.17.0.1 dev eth0 src 172.17.0.3 uid 0 \\    cache \n', { ipv4: '172.17.0.3', iface: 'eth0' }],
    ['network: ubuntu 22.04 (cloud)', network, '1.1.1.1 via 10.0.0.1 dev ens5 src 10.0.1.23 uid 1000 \\    cache \n', { ipv4: '10.0.1.23', iface: 'ens5' }],
    ['network: no default route', network, '', {}],
    ['uid: root', uid, '0\n', { uid: 0 }],
    ['uid: user', uid, '1000\n', { uid: 1000 }],
    ['init: systemd', init, 'systemd\n', { initSystem: 'systemd' }],
    ['init: other', init, 'other\n', { initSystem: 'other' }],
  ])('%s', (_n, source, stdout, want) => {
    expect(source.parse(stdout)).toEqual(want);
  });

  it('os-release: quotes and escapes', () => {
    expect(parseOsRelease(`A="x \\"y\\""\nB='z'\n# comment\nC=plain`)).toEqual({ A: 'x "y"', B: 'z', C: 'plain' });
  });
});

describe('gatherFacts', () => {
  const sections: Record<string, string> = {
    host: 'web1\nweb1.example.com\n',
    os: UBUNTU2204_OS_RELEASE,
    kernel: '5.15.0-105-generic\nx86_64\n',
    cpus: '2\n',
    memory: MEMINFO_UBUNTU,
    container: 'none\nnone\n',
    network: '1.1.1.1 via 10.0.0.1 dev ens5 src 10.0.1.23 uid 0 \n',
    uid: '0\n',
    init: 'systemd\n',
  };

  it('runs ONE command and parses every section', async () => {
    const cmds: string[] = [];
    const facts = await gatherFacts(async (cmd) => {
      cmds.push(cmd);
      const marker = /echo '(@@infra-fact-[0-9a-f]+@@)host'/.exec(cmd)![1];
      const stdout = Object.entries(sections).map(([k, v]) => `${marker}${k}\n${v}`).join('');
      return { code: 0, stdout, stderr: '', stdoutBytes: Buffer.from(stdout) };
    });
    expect(cmds).toHaveLength(1);
    expect(facts).toEqual({
      hostname: 'web1',
      fqdn: 'web1.example.com',
      os: { id: 'ubuntu', versionId: '22.04', codename: 'jammy', prettyName: 'Ubuntu 22.04.4 LTS', family: 'debian' },
      kernel: '5.15.0-105-generic',
      arch: 'x86_64',
      cpus: 2,
      memoryMb: 7940,
      container: 'none',
      ipv4: '10.0.1.23',
      iface: 'ens5',
      uid: 0,
      initSystem: 'systemd',
    });
  });

  it('a missing section keeps the default', () => {
    const f = parseFactOutput('@@m@@uid\n0\n', '@@m@@');
    expect(f.uid).toBe(0);
    expect(f.os.id).toBe('unknown');
  });

  it('the script runs every source and cannot fail on one of them', () => {
    const s = factScript('@@m@@');
    for (const src of factSources) expect(s).toContain(`echo '@@m@@${src.name}'`);
    expect(s.trimEnd().endsWith('exit 0')).toBe(true);
  });

  it('kernel: release and architecture read from /proc answer what uname says, here', () => {
    const out = execFileSync('sh', ['-c', kernel.command]).toString();
    expect(kernel.parse(out)).toEqual({ kernel: execFileSync('uname', ['-r']).toString().trim(), arch: execFileSync('uname', ['-m']).toString().trim() });
  });

  it('a failed round trip is an error', async () => {
    await expect(gatherFacts(async () => ({ code: 127, stdout: '', stderr: 'sh: not found', stdoutBytes: Buffer.alloc(0) }))).rejects.toThrow(/exit 127/);
  });
});

describe('cpus: the affinity list', () => {
  it.each([
    ['0-1', 2],
    ['0', 1],
    ['0-3,6,8-9', 7],
    ['0-3,x', NaN],
  ])('%s → %d', (list, n) => expect(countCpuList(list)).toBe(n));
  it('falls back to the count nproc printed', () => {
    expect(cpus.parse('4\n')).toEqual({ cpus: 4 });
    expect(cpus.parse('list 0-7\n')).toEqual({ cpus: 8 });
  });
});
