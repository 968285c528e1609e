import { describe, expect, it } from 'vitest';
import { users } from '../../../src/modules/index.js';
import { decideGroup, decideUser, editAuthorizedKeys, keyIdentity, parseGroup, parseUserStatus } from '../../../src/modules/users.js';
import { fakeHost, withChanges } from './fake-host.js';

const status = (passwd: string, groups = 'deploy sudo') => parseUserStatus(`@@infra-users@@passwd\n${passwd}\n@@infra-users@@groups\n${groups}\n`);
const DEPLOY = 'deploy:x:1001:1001:Deploy:/home/deploy:/bin/bash';
const up = (v: Record<string, unknown>) => users.user.module.params.parse({ name: 'deploy', ...v });

describe('users.user decisions', () => {
  it('parses getent + id output', () => {
    expect(status(DEPLOY)).toEqual({
      entry: { name: 'deploy', uid: 1001, gid: 1001, comment: 'Deploy', home: '/home/deploy', shell: '/bin/bash' },
      primaryGroup: 'deploy',
      groups: ['sudo'],
    });
    expect(status('').entry).toBeNull();
    // One `id -Gn` per user: its first group is the primary one.
    expect(status(DEPLOY, 'staff deploy sudo')).toMatchObject({ primaryGroup: 'staff', groups: ['deploy', 'sudo'] });
  });

  it('reads a user with getent and one id', async () => {
    const host = fakeHost([{ stdout: `@@infra-users@@passwd\n${DEPLOY}\n@@infra-users@@groups\ndeploy sudo\n` }]);
    await users.user.module.check(host, up({}));
    expect(host.commands[0].match(/\bid -/g)).toEqual(['id -']);
  });

  it.each([
    ['exists as wanted', {}, status(DEPLOY), [], undefined],
    ['create', { uid: 2000, groups: ['sudo'] }, status(''), ['create user deploy'], ['-u', '2000', '-U', '-G', 'sudo', '-m']],
    ['system user without home', { system: true, createHome: false }, status(''), ['create user deploy'], ['-U', '-r', '-M']],
    ['append a group', { groups: ['docker'] }, status(DEPLOY), ['groups'], ['-a', '-G', 'docker']],
    ['exact groups', { groups: ['docker'], append: false }, status(DEPLOY), ['groups'], ['-G', 'docker']],
    ['already in group (append)', { groups: ['sudo'] }, status(DEPLOY), [], undefined],
    ['shell and uid', { shell: '/bin/sh', uid: 1500 }, status(DEPLOY), ['uid', 'shell'], ['-u', '1500', '-s', '/bin/sh']],
    ['remove', { state: 'absent', remove: true }, status(DEPLOY), ['remove user deploy'], ['-r']],
    ['absent already', { state: 'absent' }, status(''), [], undefined],
  ])('%s', (_n, p, s, whats, args) => {
    const c = decideUser(up(p), s);
    expect(c.changes.map((x) => x.what)).toEqual(whats);
    expect(c.data?.args).toEqual(args);
  });

  it('apply quotes the arguments', async () => {
    const host = fakeHost([{ stdout: '@@infra-users@@passwd\n\n' }, {}]);
    const p = up({ comment: "O'Brien; rm -rf /" });
    await users.user.module.apply(host, p, withChanges(await users.user.module.check(host, p)));
    expect(host.commands[1]).toBe(`useradd -U -c 'O'\\''Brien; rm -rf /' -m -- deploy`);
  });
});

describe('users.group decisions', () => {
  const gp = (v: Record<string, unknown>) => users.group.module.params.parse({ name: 'app', ...v });
  it.each([
    ['create', {}, null, ['groupadd']],
    ['create with gid', { gid: 900, system: true }, null, ['groupadd', '-g', '900', '-r']],
    ['exists', {}, parseGroup('app:x:900:'), undefined],
    ['gid differs', { gid: 901 }, parseGroup('app:x:900:'), ['groupmod', '-g', '901']],
    ['remove', { state: 'absent' }, parseGroup('app:x:900:a,b'), ['groupdel']],
  ])('%s', (_n, p, g, data) => {
    expect(decideGroup(gp(p), g).data).toEqual(data);
  });
  it('getent exit 2 = no such group', async () => {
    const c = await users.group.module.check(fakeHost([{ code: 2 }]), gp({}));
    expect(c.changes).toEqual([{ what: 'create group app', to: undefined }]);
  });
});

describe('authorized keys', () => {
  const A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAaaa alice@laptop';
  const B = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABbbb bob@desk';
  const kp = (v: Record<string, unknown>) => users.authorizedKey.module.params.parse({ user: 'deploy', ...v });
  it.each([
    [A, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAaaa'],
    [`from="10.0.0.0/8",no-pty ${A}`, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAaaa'],
    ['# a comment', null],
    ['', null],
  ])('identity of %j', (line, id) => expect(keyIdentity(line)).toBe(id));

  it.each([
    ['add', [B], kp({ key: A }), [B, A]],
    ['already there', [A, B], kp({ key: A }), [A, B]],
    ['new comment replaces in place', [A, B], kp({ key: A.replace('alice@laptop', 'alice@new') }), [A.replace('alice@laptop', 'alice@new'), B]],
    ['exclusive', [A, B, '# note'], kp({ key: B, exclusive: true }), [B]],
    ['absent', [A, B], kp({ key: A, state: 'absent' }), [B]],
    ['two keys at once', [], kp({ key: `${A}\n${B}\n` }), [A, B]],
  ])('%s', (_n, lines, p, want) => expect(editAuthorizedKeys(lines, p)).toEqual(want));

  it('rejects a non-key', () => {
    expect(users.authorizedKey.module.params.safeParse({ user: 'deploy', key: 'hello' }).success).toBe(false);
  });
});
