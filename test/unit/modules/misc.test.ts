import { describe, expect, it } from 'vitest';
import { command, moduleRegistry, sysctl } from '../../../src/modules/index.js';
import { decideCommand, guardScript } from '../../../src/modules/command.js';
import { normalizeValue, procSysPath, setSysctlLine } from '../../../src/modules/sysctl.js';
import { fakeHost, fileProbe, withChanges } from './fake-host.js';

describe('registry', () => {
  it('has every module by name', () => {
    for (const [name, m] of moduleRegistry) expect(m.name).toBe(name);
    expect([...moduleRegistry.keys()]).toEqual(expect.arrayContaining([
      'apt.packages', 'apt.repository', 'apt.update',
      'command.run',
      'files.absent', 'files.block', 'files.copy', 'files.directory', 'files.file', 'files.line', 'files.template',
      'sysctl.param',
      'systemd.service', 'systemd.unit',
      'users.authorizedKey', 'users.group', 'users.user',
    ]));
  });
});

describe('sysctl', () => {
  it.each([
    ['append to empty', [], ['net.ipv4.ip_forward = 1']],
    ['append after others', ['vm.swappiness = 10'], ['vm.swappiness = 10', 'net.ipv4.ip_forward = 1']],
    ['replace existing', ['# x', 'net.ipv4.ip_forward=0', 'b = 2'], ['# x', 'net.ipv4.ip_forward = 1', 'b = 2']],
    ['slash form is the same key', ['net/ipv4/ip_forward = 0'], ['net.ipv4.ip_forward = 1']],
    ['same value, other spacing: untouched', ['net.ipv4.ip_forward=1'], ['net.ipv4.ip_forward=1']],
    ['commented line is not the key', ['# net.ipv4.ip_forward = 0'], ['# net.ipv4.ip_forward = 0', 'net.ipv4.ip_forward = 1']],
  ])('%s', (_n, lines, want) => expect(setSysctlLine(lines, 'net.ipv4.ip_forward', '1')).toEqual(want));

  it('tab-separated live values equal space-separated ones', () => {
    expect(normalizeValue('32768\t60999\n')).toBe(normalizeValue('32768 60999'));
  });

  it.each([
    ['persisted and live', 'net.ipv4.ip_forward = 1\n', '1', []],
    ['live differs', 'net.ipv4.ip_forward = 1\n', '0', ['live value']],
    ['file differs', 'other = 2\n', '1', ['/etc/sysctl.d/99-infra.conf: content']],
  ])('check: %s', async (_n, file, live, whats) => {
    const host = fakeHost([{ stdout: `@@infra-sysctl@@live\n${live}\n@@infra-sysctl@@file\n${fileProbe({ content: file })}` }]);
    const c = await sysctl.param.module.check(host, sysctl.param.module.params.parse({ name: 'net.ipv4.ip_forward', value: 1 }));
    expect(c.changes.map((x) => x.what)).toEqual(whats);
    expect(host.commands).toHaveLength(1);
  });

  it('apply writes the file and sets the live value', async () => {
    const host = fakeHost([{ stdout: '@@infra-sysctl@@live\n0\n@@infra-sysctl@@file\nabsent\n' }, {}]);
    const p = sysctl.param.module.params.parse({ name: 'net.ipv4.ip_forward', value: 1 });
    await sysctl.param.module.apply(host, p, withChanges(await sysctl.param.module.check(host, p)));
    expect(host.puts.map((x) => [x.path, x.bytes])).toEqual([['/etc/sysctl.d/99-infra.conf', 'net.ipv4.ip_forward = 1\n']]);
    expect(host.commands[1]).toBe('sysctl -q -w net.ipv4.ip_forward=1');
  });

  it('an unknown key fails', async () => {
    const host = fakeHost([{ stdout: '@@infra-sysctl@@live\n@@infra-sysctl@@file\nabsent\n', stderr: 'sysctl: cannot stat /proc/sys/net/nope', code: 1 }]);
    await expect(sysctl.param.module.check(host, sysctl.param.module.params.parse({ name: 'net.nope', value: 1 }))).rejects.toThrow(/cannot stat/);
  });

  it('a persisted-only param does not read the live value', async () => {
    const host = fakeHost([{ stdout: '@@infra-sysctl@@live\n1\n@@infra-sysctl@@file\nabsent\n' }, { stdout: '@@infra-sysctl@@file\nabsent\n' }]);
    await sysctl.param.module.check(host, sysctl.param.module.params.parse({ name: 'net.ipv4.tcp_syncookies', value: 1 }));
    await sysctl.param.module.check(host, sysctl.param.module.params.parse({ name: 'net.ipv4.tcp_syncookies', value: 1, live: false }));
    expect(host.commands[0]).toContain('sysctl -n -- net.ipv4.tcp_syncookies\n');
    expect(host.commands[1]).not.toContain('sysctl -n');
  });

  it.each([
    ['net.ipv4.ip_forward', '/proc/sys/net/ipv4/ip_forward'],
    ['net/ipv4/ip_forward', '/proc/sys/net/ipv4/ip_forward'],
    ['net.ipv4.conf.eth0/100.rp_filter', '/proc/sys/net/ipv4/conf/eth0.100/rp_filter'],
    ['net/ipv4/conf/eth0.100/rp_filter', '/proc/sys/net/ipv4/conf/eth0.100/rp_filter'],
  ])('key %s is read from %s', (name, path) => expect(procSysPath(name)).toBe(path));

  it.each(['net/../../etc/shadow', 'net.ipv4..x', 'net/ipv4/./x', 'net.'])('key %s, leaving /proc/sys or with an empty part, is refused', (name) => {
    expect(sysctl.param.module.params.safeParse({ name, value: 1 }).success).toBe(false);
  });
});

describe('command.run', () => {
  const cp = (v: Record<string, unknown>) => command.run.module.params.parse({ cmd: 'make install', ...v });
  it.each([
    ['no guard: always', {}, [], 1, true],
    ['creates exists', { creates: '/usr/local/bin/x' }, ['creates'], 0, undefined],
    ['creates missing', { creates: '/usr/local/bin/x' }, [], 1, undefined],
    ['removes missing', { removes: '/tmp/x' }, ['removes'], 0, undefined],
    ['unless succeeded', { unless: 'test -x /x' }, ['unless'], 0, undefined],
    ['onlyIf failed', { onlyIf: 'test -x /x' }, ['onlyIf'], 0, undefined],
    ['onlyIf passed', { onlyIf: 'true' }, [], 1, undefined],
  ])('%s', (_n, p, skips, n, always) => {
    const c = decideCommand(cp(p), skips);
    expect(c.changes).toHaveLength(n);
    expect(c.always).toBe(always);
    if (n === 0) expect(c.reason).toBeTruthy();
  });

  it('without a guard the plan says it always runs, with no host command', async () => {
    const host = fakeHost([]);
    const c = await command.run.module.check(host, cp({}));
    expect(c.changes[0]?.from).toBe('always runs (no creates/unless/onlyIf guard)');
    expect(host.commands).toEqual([]);
  });

  it('guards are quoted', () => {
    expect(guardScript(cp({ creates: "/tmp/a b'c", unless: "grep -q 'x' /f" }))).toBe(
      `[ -e '/tmp/a b'\\''c' ] && echo creates\n(eval 'grep -q '\\''x'\\'' /f') >/dev/null 2>&1 && echo unless\nexit 0`,
    );
  });

  it('apply runs through eval (not sh -c: argv is visible in ps) and fails with exit code and stderr tail', async () => {
    const host = fakeHost([{ code: 2, stderr: 'make: *** No rule to make target\n' }]);
    await expect(command.run.module.apply(host, cp({ chdir: '/srv/app' }), { changes: [{ what: 'run' }] })).rejects.toThrow(
      /command "make install" failed \(exit 2\):\nmake: \*\*\* No rule/,
    );
    expect(host.commands).toEqual([`cd /srv/app && eval 'make install'`]);
  });
});
