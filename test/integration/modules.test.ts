/**
 * Every module on a real Debian 12 host (one systemd container for the whole file):
 * apply → check reports 0 changes → a second check-then-apply applies nothing, and what it
 * did is real (read back with docker exec, not through the module).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apt, command, files, sysctl, systemd, users } from '../../src/modules/index.js';
import type { Task } from '../../src/modules/types.js';
import { Secret } from '../../src/secrets/secret.js';
import { checkOnly, converge, startDockerHost, type Convergence, type DockerHost } from './helpers/docker-host.js';
import { waitFor } from './helpers/wait.js';

let h: DockerHost;
const t = (task: Task<any>) => task as Task<unknown>; // eslint-disable-line @typescript-eslint/no-explicit-any

beforeAll(async () => {
  h = await startDockerHost();
}, 60_000);
afterAll(async () => {
  await h?.down();
});

const sh = (cmd: string): Promise<string> => h.sh(cmd);

function expectConverged(c: Convergence): void {
  expect(c.first.changes.length).toBeGreaterThan(0);
  expect(c.after.changes).toEqual([]);
  expect(c.after.reason).toBeTruthy();
  expect(c.secondApplied).toBe(false);
}

describe('facts', () => {
  it('gathers Debian 12 facts in one round trip', () => {
    const f = h.ctx.facts;
    expect(f.os).toMatchObject({ id: 'debian', versionId: '12', codename: 'bookworm', family: 'debian' });
    expect(f.hostname).toBe('modtest');
    expect(f.container).toBe('docker');
    expect(f.initSystem).toBe('systemd');
    expect(f.uid).toBe(0);
    expect(f.cpus).toBeGreaterThan(0);
    expect(f.memoryMb).toBeGreaterThan(100);
    expect(f.ipv4).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(f.iface).toBe('eth0');
  });
});

describe('files', () => {
  it('files.file writes content, mode and group; check mode changes nothing', async () => {
    const task = t(files.file({ path: '/etc/infra-test.conf', content: 'a = 1\n', mode: '0640', group: 'adm' }));
    const planned = await checkOnly(h.checkCtx, task);
    expect(planned.changes[0]?.what).toBe('create');
    expect(planned.diff?.[0]).toMatchObject({ kind: 'file', before: null, after: 'a = 1\n' });
    expect((await h.exec('test -e /etc/infra-test.conf')).code).toBe(1);

    expectConverged(await converge(h.ctx, task));
    expect(await sh('stat -c "%a %U %G" /etc/infra-test.conf; cat /etc/infra-test.conf')).toBe('640 root adm\na = 1\n');

    // New content: the diff shows old and new text; mode drift alone is fixed with chmod.
    const changed = await checkOnly(h.ctx, t(files.file({ path: '/etc/infra-test.conf', content: 'a = 2\n', mode: '0640', group: 'adm' })));
    expect(changed.diff?.[0]).toMatchObject({ before: 'a = 1\n', after: 'a = 2\n' });
    await sh('chmod 0666 /etc/infra-test.conf');
    const modeOnly = await converge(h.ctx, task);
    expectConverged(modeOnly);
    expect(modeOnly.first.changes).toEqual([{ what: 'mode', from: '0666', to: '0640' }]);
    expect(await sh('stat -c %a /etc/infra-test.conf')).toBe('640\n');
  });

  it('files.file keeps the old file when validate fails, and marks secrets sensitive', async () => {
    const bad = t(files.file({ path: '/etc/infra-test.conf', content: 'broken\n', validate: 'grep -q "^a = " %s' }));
    await expect(converge(h.ctx, bad)).rejects.toThrow(/validate failed for \/etc\/infra-test.conf .*file left unchanged/);
    expect(await sh('cat /etc/infra-test.conf; ls -a /etc | grep -c infra-put || true')).toBe('a = 1\n0\n');

    const good = t(files.file({ path: '/etc/infra-test.conf', content: 'a = 3\n', validate: 'grep -q "^a = " %s', sensitive: true }));
    const c = await converge(h.ctx, good);
    expectConverged(c);
    expect(c.first.diff?.[0]).toMatchObject({ sensitive: true });
    expect(await sh('stat -c "%a %G" /etc/infra-test.conf; cat /etc/infra-test.conf')).toBe('640 adm\na = 3\n');
  });

  it('files.copy copies a role file', async () => {
    expectConverged(await converge(h.ctx, t(files.copy({ src: 'hello.txt', dest: '/opt/hello.txt', mode: '0600' }))));
    expect(await sh('stat -c %a /opt/hello.txt; cat /opt/hello.txt')).toBe('600\nhello from the modtest role\n');
  });

  it('files.template renders with facts and vars', async () => {
    const c = await converge(h.ctx, t(files.template({ src: 'motd.hbs', dest: '/etc/motd', vars: { owner: 'platform' } })));
    expectConverged(c);
    expect(c.first.diff?.[0].kind).toBe('file');
    expect(await sh('cat /etc/motd')).toBe('Welcome to modtest (Debian GNU/Linux 12 (bookworm))\nmanaged by infra: platform\n');
  });

  it('files.directory creates with mode and owner, then fixes drift', async () => {
    const task = t(files.directory({ path: '/srv/app/data', mode: '0750', owner: 'www-data', group: 'www-data' }));
    expectConverged(await converge(h.ctx, task));
    expect(await sh('stat -c "%a %U %G" /srv/app/data')).toBe('750 www-data www-data\n');
    await sh('chown root /srv/app/data');
    const c = await converge(h.ctx, task);
    expect(c.first.changes).toEqual([{ what: 'owner', from: 'root', to: 'www-data' }]);
    expectConverged(c);
  });

  it('files.line adds, replaces by regexp and removes', async () => {
    await sh('printf "# sshd\\nPort 22\\nPermitRootLogin yes\\nUsePAM yes\\n" > /etc/infra-line.conf');
    const replace = await converge(h.ctx, t(files.line({ path: '/etc/infra-line.conf', regexp: '^#?PermitRootLogin', line: 'PermitRootLogin no' })));
    expectConverged(replace);
    const after = await converge(h.ctx, t(files.line({ path: '/etc/infra-line.conf', line: 'MaxAuthTries 3', insertAfter: '^Port ' })));
    expectConverged(after);
    expect(await sh('cat /etc/infra-line.conf')).toBe('# sshd\nPort 22\nMaxAuthTries 3\nPermitRootLogin no\nUsePAM yes\n');
    expectConverged(await converge(h.ctx, t(files.line({ path: '/etc/infra-line.conf', regexp: '^UsePAM', state: 'absent' }))));
    expect(await sh('cat /etc/infra-line.conf')).toBe('# sshd\nPort 22\nMaxAuthTries 3\nPermitRootLogin no\n');
    await expect(checkOnly(h.ctx, t(files.line({ path: '/etc/nope.conf', line: 'x' })))).rejects.toThrow(/does not exist/);
  });

  it('files.block inserts, updates and removes a marked block', async () => {
    await sh('printf "first\\nlast\\n" > /etc/infra-block.conf');
    const put = (block: string) => t(files.block({ path: '/etc/infra-block.conf', block, insertBefore: '^last' }));
    expectConverged(await converge(h.ctx, put('one\ntwo\n')));
    expect(await sh('cat /etc/infra-block.conf')).toBe('first\n# BEGIN MANAGED BY INFRA\none\ntwo\n# END MANAGED BY INFRA\nlast\n');
    expectConverged(await converge(h.ctx, put('three\n')));
    expect(await sh('cat /etc/infra-block.conf')).toBe('first\n# BEGIN MANAGED BY INFRA\nthree\n# END MANAGED BY INFRA\nlast\n');
    expectConverged(await converge(h.ctx, t(files.block({ path: '/etc/infra-block.conf', state: 'absent' }))));
    expect(await sh('cat /etc/infra-block.conf')).toBe('first\nlast\n');
  });

  it('files.line/files.block on a symlink (Ubuntu\'s resolv.conf) refuse; the link and its target stay as they were', async () => {
    await sh('mkdir -p /run/fake-resolve && printf "nameserver 127.0.0.53\\noptions edns0\\nsearch .\\n" > /run/fake-resolve/stub.conf && ln -sfn /run/fake-resolve/stub.conf /etc/infra-resolv.conf');
    for (const task of [
      files.line({ path: '/etc/infra-resolv.conf', line: 'options rotate' }),
      files.block({ path: '/etc/infra-resolv.conf', block: 'options rotate' }),
    ]) {
      await expect(converge(h.ctx, t(task))).rejects.toThrow(/refusing to edit \/etc\/infra-resolv.conf: it is a symlink to \/run\/fake-resolve\/stub.conf/);
      await expect(checkOnly(h.checkCtx, t(task))).rejects.toThrow(/is a symlink/);
    }
    expect(await sh('readlink /etc/infra-resolv.conf; cat /etc/infra-resolv.conf')).toBe('/run/fake-resolve/stub.conf\nnameserver 127.0.0.53\noptions edns0\nsearch .\n');
    // Editing the target, named as such, works.
    expectConverged(await converge(h.ctx, t(files.line({ path: '/run/fake-resolve/stub.conf', line: 'options rotate' }))));
    expect(await sh('readlink /etc/infra-resolv.conf; tail -1 /etc/infra-resolv.conf')).toBe('/run/fake-resolve/stub.conf\noptions rotate\n');
  });

  it('a Secret written without a mode lands 0600', async () => {
    const c = await converge(h.ctx, t(files.file({ path: '/etc/infra-secret.env', content: new Secret('db-password-4242\n') })));
    expectConverged(c);
    expect(await sh('stat -c "%a %U" /etc/infra-secret.env')).toBe('600 root\n');
  });

  it('files.absent removes files and directories', async () => {
    const c = await converge(h.ctx, t(files.absent({ path: '/opt/hello.txt' })));
    expectConverged(c);
    expect(c.first.diff?.[0]).toMatchObject({ before: 'hello from the modtest role\n', after: null });
    expectConverged(await converge(h.ctx, t(files.absent({ path: '/srv/app' }))));
    expect((await h.exec('test -e /opt/hello.txt || test -e /srv/app')).code).toBe(1);
  });
});

describe('apt', () => {
  it('apt.update refreshes missing lists', async () => {
    expectConverged(await converge(h.ctx, t(apt.update({ cacheValidTime: 3600 }))));
    expect(Number(await sh('ls /var/lib/apt/lists | grep -c _Packages'))).toBeGreaterThan(0);
  }, 180_000);

  it('apt.packages installs with old → new versions, then removes', async () => {
    const c = await converge(h.ctx, t(apt.packages({ names: ['tree', 'less'] })));
    expectConverged(c);
    const version = (await sh("dpkg-query -W -f='${Version}' tree")).trim();
    expect(c.first.diff).toEqual([{ kind: 'package', name: 'tree', before: null, after: version }]);
    expect(c.after.reason).toContain(`tree ${version}`);
    expect((await checkOnly(h.ctx, t(apt.packages({ names: ['tree'], state: 'latest' })))).changes).toEqual([]);
    const pinned = await checkOnly(h.ctx, t(apt.packages({ names: [`tree=${version}`] })));
    expect(pinned.changes).toEqual([]);

    const rm = await converge(h.ctx, t(apt.packages({ names: ['tree'], state: 'absent' })));
    expectConverged(rm);
    expect(rm.first.diff).toEqual([{ kind: 'package', name: 'tree', before: version, after: null }]);
    expect((await h.exec('dpkg-query -W -f="${db:Status-Abbrev}" tree')).stdout).not.toMatch(/^ii/);
    await expect(checkOnly(h.ctx, t(apt.packages({ names: ['no-such-package-infra'] })))).rejects.toThrow(/no installation candidate/);
  }, 180_000);

  it('apt.repository writes a deb822 source with its Signed-By key, and apt uses it', async () => {
    const key = await sh('gpg --no-default-keyring --keyring /usr/share/keyrings/debian-archive-keyring.gpg --export --armor 2>/dev/null');
    const uri = (await sh("awk '/^deb /{print $2; exit}' /etc/apt/sources.list")).trim();
    // A suite sources.list does not have, so apt's targets come from our file alone.
    const repo = { name: 'infra-test', uris: uri, suites: 'bookworm-backports', components: 'main', key };
    const c = await converge(h.ctx, t(apt.repository(repo)));
    expectConverged(c);
    expect(await sh('cat /etc/apt/sources.list.d/infra-test.sources')).toContain('Signed-By: /etc/apt/keyrings/infra-test.asc\n');
    expect(await sh('head -1 /etc/apt/keyrings/infra-test.asc')).toBe('-----BEGIN PGP PUBLIC KEY BLOCK-----\n');
    // apt read the new source and verified its Release file with that key.
    expect(await sh('apt-get indextargets --format "\\$(SOURCESENTRY)" | sort -u')).toContain('/etc/apt/sources.list.d/infra-test.sources');
    expectConverged(await converge(h.ctx, t(apt.repository({ ...repo, state: 'absent', update: false }))));
    expect((await h.exec('ls /etc/apt/sources.list.d/infra-test.sources /etc/apt/keyrings/infra-test.asc')).code).not.toBe(0);
  }, 180_000);
});

describe('systemd', () => {
  it('systemd.unit writes a unit and a drop-in, with daemon-reload', async () => {
    expectConverged(await converge(h.ctx, t(systemd.unit({ name: 'sleeper', src: 'sleeper.service.hbs', vars: { description: 'infra test sleeper' } }))));
    expectConverged(await converge(h.ctx, t(systemd.unit({ name: 'sleeper', dropIn: 'env', content: '[Service]\nEnvironment=COLOR=blue\n' }))));
    const show = (await sh('systemctl show -p Description,Environment,NeedDaemonReload sleeper')).split('\n').sort();
    expect(show).toEqual(['', 'Description=infra test sleeper', 'Environment=COLOR=blue', 'NeedDaemonReload=no']);
  });

  it('systemd.service enables and starts, stops, and restarts every time', async () => {
    const start = await converge(h.ctx, t(systemd.service({ name: 'sleeper', enabled: true, state: 'started' })));
    expectConverged(start);
    expect(start.first.diff).toContainEqual({ kind: 'service', name: 'sleeper.service', before: 'inactive', after: 'active' });
    expect(await sh('systemctl is-active sleeper; systemctl is-enabled sleeper')).toBe('active\nenabled\n');

    const pid = (await sh('systemctl show -p MainPID --value sleeper')).trim();
    const restart = await converge(h.ctx, systemd.restart('sleeper') as Task<unknown>);
    expect(restart.first.always).toBe(true);
    expect(restart.secondApplied).toBe(true); // by design: a restart handler acts every time
    expect((await sh('systemctl show -p MainPID --value sleeper')).trim()).not.toBe(pid);

    expectConverged(await converge(h.ctx, t(systemd.service({ name: 'sleeper', enabled: false, state: 'stopped' }))));
    expect((await h.exec('systemctl is-active sleeper; systemctl is-enabled sleeper')).stdout).toBe('inactive\ndisabled\n');
    await expect(checkOnly(h.ctx, t(systemd.service({ name: 'no-such-unit', state: 'started' })))).rejects.toThrow(/not found/);
  });

  it('a crash-looping unit, activating (auto-restart), is not taken for started: restarted now, not after its RestartSec', async () => {
    const content = '[Service]\nExecStart=/bin/sh -c "test -f /run/flaky-ok && exec sleep infinity; exit 1"\nRestart=always\nRestartSec=600\n';
    await converge(h.ctx, t(systemd.unit({ name: 'flaky', content })));
    await sh('rm -f /run/flaky-ok; systemctl start flaky || true');
    await waitFor('flaky waiting to restart', async () => (await sh('systemctl show -p ActiveState,SubState flaky')) === 'ActiveState=activating\nSubState=auto-restart\n', 20_000);
    await sh('touch /run/flaky-ok');
    const c = await converge(h.ctx, t(systemd.service({ name: 'flaky', state: 'started' })));
    expectConverged(c);
    expect(c.first.diff).toEqual([{ kind: 'service', name: 'flaky.service', before: 'activating (auto-restart)', after: 'active' }]);
    expect(await sh('systemctl show -p ActiveState,SubState flaky')).toBe('ActiveState=active\nSubState=running\n');
  });

  it('a failing start reports the journal', async () => {
    await converge(h.ctx, t(systemd.unit({ name: 'broken', content: '[Service]\nType=oneshot\nExecStart=/bin/sh -c "echo boom-from-unit; exit 3"\n' })));
    await expect(converge(h.ctx, t(systemd.service({ name: 'broken', state: 'started' })))).rejects.toThrow(/boom-from-unit/);
  });
});

describe('users', () => {
  it('users.group and users.user create, then modify groups and shell', async () => {
    expectConverged(await converge(h.ctx, t(users.group({ name: 'deployers', gid: 2500 }))));
    expect(await sh('getent group deployers')).toBe('deployers:x:2500:\n');
    const u = { name: 'deploy', uid: 2501, groups: ['deployers'], shell: '/bin/bash' };
    expectConverged(await converge(h.ctx, t(users.user(u))));
    expect(await sh('getent passwd deploy; id -Gn deploy; test -d /home/deploy && echo home')).toBe(
      'deploy:x:2501:2501::/home/deploy:/bin/bash\ndeploy deployers\nhome\n',
    );
    const exact = await converge(h.ctx, t(users.user({ ...u, groups: ['adm'], append: false, shell: '/bin/sh' })));
    expectConverged(exact);
    expect(await sh('id -Gn deploy; getent passwd deploy | cut -d: -f7')).toBe('deploy adm\n/bin/sh\n');
  });

  it('users.authorizedKey adds, replaces the comment, and enforces exclusive', async () => {
    const k1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHf4q1n2Z9o0U2w1b5mQy3b7r0VdB4Jxk4s5mJ6Yh8Qw one@laptop';
    const k2 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5mX0Zp9a0b4Jc7v2kqY3n1r8Tt6wHqL0sZcU9dE2Fg two@laptop';
    expectConverged(await converge(h.ctx, t(users.authorizedKey({ user: 'deploy', key: k1 }))));
    expectConverged(await converge(h.ctx, t(users.authorizedKey({ user: 'deploy', key: k2 }))));
    expect(await sh('stat -c "%a %U" /home/deploy/.ssh /home/deploy/.ssh/authorized_keys; cat /home/deploy/.ssh/authorized_keys')).toBe(
      `700 deploy\n600 deploy\n${k1}\n${k2}\n`,
    );
    expectConverged(await converge(h.ctx, t(users.authorizedKey({ user: 'deploy', key: k1.replace('one@laptop', 'one@desk') }))));
    expectConverged(await converge(h.ctx, t(users.authorizedKey({ user: 'deploy', key: k2, exclusive: true }))));
    expect(await sh('cat /home/deploy/.ssh/authorized_keys')).toBe(`${k2}\n`);
  });

  it('users.user and users.group remove', async () => {
    expectConverged(await converge(h.ctx, t(users.user({ name: 'deploy', state: 'absent', remove: true }))));
    expectConverged(await converge(h.ctx, t(users.group({ name: 'deployers', state: 'absent' }))));
    expect((await h.exec('getent passwd deploy || getent group deployers')).code).toBe(2);
  });
});

describe('sysctl', () => {
  it('sysctl.param persists several params in one file and sets live values', async () => {
    const file = '/etc/sysctl.d/99-infra.conf';
    expectConverged(await converge(h.ctx, t(sysctl.param({ name: 'net.ipv4.tcp_keepalive_time', value: 600 }))));
    expectConverged(await converge(h.ctx, t(sysctl.param({ name: 'net.ipv4.tcp_keepalive_intvl', value: 30 }))));
    const ports = await converge(h.ctx, t(sysctl.param({ name: 'net.ipv4.ip_local_port_range', value: '20000 60999' })));
    expectConverged(ports);
    expect(await sh(`cat ${file}`)).toBe('net.ipv4.tcp_keepalive_time = 600\nnet.ipv4.tcp_keepalive_intvl = 30\nnet.ipv4.ip_local_port_range = 20000 60999\n');
    expect(await sh('sysctl -n net.ipv4.tcp_keepalive_time net.ipv4.tcp_keepalive_intvl')).toBe('600\n30\n');
    // Live drift alone (someone ran sysctl -w) is put back.
    await sh('sysctl -qw net.ipv4.tcp_keepalive_time=7200');
    const drift = await converge(h.ctx, t(sysctl.param({ name: 'net.ipv4.tcp_keepalive_time', value: 600 })));
    expect(drift.first.changes).toEqual([{ what: 'live value', from: '7200', to: '600' }]);
    expectConverged(drift);
  });
});

describe('command', () => {
  it('command.run honours creates, unless and onlyIf; unguarded always runs', async () => {
    const creates = await converge(h.ctx, t(command.run({ cmd: 'echo made > /tmp/made', creates: '/tmp/made' })));
    expectConverged(creates);
    expect(await sh('cat /tmp/made')).toBe('made\n');
    expectConverged(await converge(h.ctx, t(command.run({ cmd: 'echo x >> /tmp/unless', unless: 'grep -q x /tmp/unless' }))));
    expect(await sh('cat /tmp/unless')).toBe('x\n');
    expect((await checkOnly(h.ctx, t(command.run({ cmd: 'touch /tmp/never', onlyIf: 'false' })))).changes).toEqual([]);

    const always = await converge(h.ctx, t(command.run({ cmd: 'echo . >> /tmp/always' })));
    expect(always.first.changes[0]?.from).toBe('always runs (no creates/unless/onlyIf guard)');
    expect(always.secondApplied).toBe(true);
    expect(await sh('cat /tmp/always')).toBe('.\n.\n');

    await expect(converge(h.ctx, t(command.run({ cmd: 'echo oops >&2; exit 7', creates: '/tmp/none' })))).rejects.toThrow(/exit 7\):\noops/);
  });
});
