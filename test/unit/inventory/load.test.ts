import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { loadInventory } from '../../../src/inventory/load.js';
import { lockedDecryptor } from '../../../src/engine/input.js';
import { UserError, UserErrors } from '../../../src/errors.js';
import { Secret } from '../../../src/secrets/secret.js';
import { Keyring, createDecryptor, encryptValue } from '../../../src/secrets/vault.js';
import { tmpTree, removeTrees } from './tmp-tree.js';

afterAll(removeTrees);

const REPO = join(__dirname, '..', '..', '..');

/** All errors of a failed load, formatted "file:line:col: message\n  hint: ...". */
async function loadErrors(files: Record<string, string>): Promise<string[]> {
  const dir = tmpTree(files);
  try {
    await loadInventory(dir, { cwd: dir });
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return (e instanceof UserErrors ? e.errors : [e]).map((x) => x.format());
  }
  throw new Error('expected the inventory to be rejected');
}

const ok = (hosts: string) => ({ 'hosts.yaml': hosts });

describe('loadInventory rejects bad input with file:line:col and a hint', () => {
  it.each([
    [
      'unknown key with did-you-mean',
      ok('hosts:\n  db1:\n    adress: 10.0.0.1\n'),
      /^hosts\.yaml:3:5: hosts\.db1: unknown key "adress" — did you mean "address"\?\n  hint: allowed here: address, /,
    ],
    ['wrong type', ok('hosts:\n  db1:\n    address: a\n    port: "22x"\n'), /^hosts\.yaml:4:11: hosts\.db1\.port: expected number, got string "22x"$/],
    ['wrong become', ok('hosts:\n  db1:\n    address: a\n    become: yes\n'), /^hosts\.yaml:4:13: hosts\.db1\.become: expected "sudo" or false, got string "yes"/],
    ['malformed YAML', ok('hosts:\n  db1: {address: a\n'), /^hosts\.yaml:3:\d+: invalid YAML/],
    ['duplicate key', ok('hosts:\n  db1:\n    address: a\n  db1:\n    address: b\n'), /^hosts\.yaml:4:3: invalid YAML: Map keys must be unique\n  hint: each key may appear once/],
    [
      'unknown group in host.groups',
      ok('hosts:\n  db1:\n    address: a\n    groups: [postgress]\ngroups:\n  postgres: {}\n'),
      /^hosts\.yaml:4:14: unknown group "postgress" — did you mean "postgres"\?/,
    ],
    ['unknown group in children', ok('hosts: {}\ngroups:\n  db:\n    children: [pg]\n'), /^hosts\.yaml:4:16: unknown group "pg"/],
    ['unknown host in group.hosts', ok('hosts:\n  web1: {address: a}\ngroups:\n  web:\n    hosts: [web2]\n'), /^hosts\.yaml:5:13: unknown host "web2" — did you mean "web1"\?/],
    [
      'cycle in children',
      ok('hosts: {}\ngroups:\n  a:\n    children: [b]\n  b:\n    children: [c]\n  c:\n    children: [a]\n'),
      /^hosts\.yaml:4:15: groups form a cycle: a → b → c → a/,
    ],
    ['group is its own child', ok('hosts: {}\ngroups:\n  a:\n    children: [a]\n'), /groups form a cycle: a → a/],
    [
      'bastion naming an unknown host',
      ok('hosts:\n  jump: {address: 1.2.3.4, bastion: null}\n  db1: {address: a}\ngroups:\n  all:\n    bastion: jmp\n'),
      /^hosts\.yaml:6:14: bastion of db1: unknown host "jmp" — did you mean "jump"\?/,
    ],
    [
      'host that is its own bastion',
      ok('hosts:\n  jump: {address: 1.2.3.4}\ngroups:\n  all:\n    bastion: jump\n'),
      /^hosts\.yaml:5:14: host "jump" is its own bastion\n  hint: set `bastion: null` on host jump/,
    ],
    ['bastion loop', ok('hosts:\n  a: {address: x, bastion: b}\n  b: {address: y, bastion: a}\n'), /bastion loop: a → b → a/],
    ['missing address', ok('hosts:\n  db1:\n    port: 22\n'), /^hosts\.yaml:2:3: hosts\.db1: missing required key "address"/],
    ['secret in clear', ok('hosts:\n  db1:\n    address: a\n    becomePassword: hunter2\n'), /becomePassword: must be a !vault value/],
    ['bad host name', ok('hosts:\n  "db:1": {address: a}\n'), /names use letters, digits/],
    ['unknown top-level key', ok('hosts: {}\ngroup: {}\n'), /^hosts\.yaml:2:1: \(top level\): unknown key "group" — did you mean "groups"\?/],
    [
      'group_vars for an unknown group',
      { ...ok('hosts: {}\ngroups:\n  postgres: {}\n'), 'group_vars/postgress.yaml': 'a: 1\n' },
      /^group_vars\/postgress\.yaml: vars for unknown group "postgress" — did you mean "postgres"\?/,
    ],
    ['host_vars for an unknown host', { ...ok('hosts:\n  db1: {address: a}\n'), 'host_vars/db2.yaml': 'a: 1\n' }, /^host_vars\/db2\.yaml: vars for unknown host "db2" — did you mean "db1"\?/],
    ['group_vars not a mapping', { ...ok('hosts: {}\n'), 'group_vars/all.yaml': '- a\n- b\n' }, /^group_vars\/all\.yaml:1:1: expected a mapping of variables\n/],
    ['malformed group_vars', { ...ok('hosts: {}\n'), 'group_vars/all.yaml': 'a: 1\na: 2\n' }, /^group_vars\/all\.yaml:2:1: invalid YAML: Map keys must be unique/],
    ['!vault without a password', { ...ok('hosts: {}\n'), 'group_vars/all.yaml': 'db_password: !vault $infra$...\n' }, /^group_vars\/all\.yaml:1:14: .*no vault password given\n  hint: .*--vault-password-file/],
  ])('%s', async (_name, files, expected) => {
    const errors = await loadErrors(files);
    expect(errors.some((e) => expected.test(e)), errors.join('\n---\n')).toBe(true);
  });

  it('collects every error of every file at once, in file order', async () => {
    const errors = await loadErrors({
      'hosts.yaml': 'hosts:\n  db1:\n    adress: a\n  db2:\n    address: b\n    groups: [nope]\n',
      'group_vars/all.yaml': 'x: [1\n',
      'host_vars/db3.yaml': 'a: 1\n',
    });
    expect(errors).toHaveLength(4);
    expect(errors.map((e) => e.split(':')[0])).toEqual(['group_vars/all.yaml', 'host_vars/db3.yaml', 'hosts.yaml', 'hosts.yaml']);
  });

  it('names an unknown environment with a hint', async () => {
    const root = tmpTree({ 'inventories/prod/hosts.yaml': 'hosts: {}\n' });
    await expect(loadInventory('prdo', { cwd: root })).rejects.toThrow(/no inventory "prdo"/);
    await loadInventory('prdo', { cwd: root }).catch((e: UserError) => expect(e.hint).toBe('did you mean "prod"?'));
  });
});

describe('loadInventory builds the inventory', () => {
  const files = {
    'inventories/stage/hosts.yaml': [
      'hosts:',
      '  jump:',
      '    address: 203.0.113.1',
      '    groups: [bastion]',
      '    bastion: null',
      '  db1:',
      '    address: 10.0.0.31',
      '    groups: [postgres_primary]',
      '    port: 2200',
      '    vars:',
      '      shared: {host: 1}',
      '  db2:',
      '    address: 10.0.0.32',
      '  web1:',
      '    address: 10.0.0.11',
      '    connection: ssh',
      '  me:',
      '    connection: local',
      'groups:',
      '  all:',
      '    user: admin',
      '    key: keys/id_ed25519',
      '    bastion: jump',
      '    become: sudo',
      '    vars:',
      '      shared: {all: 1}',
      '  bastion: {}',
      '  postgres:',
      '    children: [postgres_primary, postgres_replica]',
      '    user: postgres-admin',
      '  postgres_primary:',
      '    become: false',
      '  postgres_replica:',
      '    hosts: [db2]',
      '  web:',
      '    hosts: [web1]',
      '',
    ].join('\n'),
    'inventories/stage/group_vars/all.yaml': 'level: all\nshared: {file_all: 1}\nlist: [1, 2]\n',
    'inventories/stage/group_vars/postgres.yaml': 'level: postgres\nshared: {pg: 1}\n',
    'inventories/stage/group_vars/postgres_primary.yaml': 'level: primary\nlist: [3]\n',
    'inventories/stage/group_vars/web.yaml': 'level: web\n',
    'inventories/stage/host_vars/db1.yml': 'shared: {host_file: 1}\nnothing: null\n',
  };
  const load = async () => {
    const root = tmpTree(files);
    return { root, inv: await loadInventory('stage', { cwd: root }) };
  };

  it('keeps host order, finds groups (ancestors included) in precedence order', async () => {
    const { root, inv } = await load();
    expect(inv.env).toBe('stage');
    expect(inv.dir).toBe(join(root, 'inventories/stage'));
    expect(inv.knownHostsPath).toBe(join(root, 'inventories/stage/known_hosts'));
    expect([...inv.hosts.keys()]).toEqual(['jump', 'db1', 'db2', 'web1', 'me']);
    expect(inv.hosts.get('db1')!.groups).toEqual(['all', 'postgres', 'postgres_primary']);
    expect(inv.hosts.get('db2')!.groups).toEqual(['all', 'postgres', 'postgres_replica']);
    expect(inv.hosts.get('web1')!.groups).toEqual(['all', 'web']);
    expect(inv.hosts.get('me')!.groups).toEqual(['all']);
    expect(inv.groups.get('postgres')).toMatchObject({ children: ['postgres_primary', 'postgres_replica'], hosts: [] });
    expect(inv.hosts.get('db1')!.pos).toMatchObject({ file: 'inventories/stage/hosts.yaml', line: 6, col: 3 });
  });

  it('resolves connection settings: host > child group > parent > all > defaults', async () => {
    const { root, inv } = await load();
    const key = join(root, 'inventories/stage/keys/id_ed25519');
    expect(inv.hosts.get('db1')!.conn).toEqual({ connection: 'ssh', address: '10.0.0.31', port: 2200, user: 'postgres-admin', become: false, key, bastion: 'jump' });
    expect(inv.hosts.get('db2')!.conn).toEqual({ connection: 'ssh', address: '10.0.0.32', port: 22, user: 'postgres-admin', become: 'sudo', key, bastion: 'jump' });
    expect(inv.hosts.get('jump')!.conn).toEqual({ connection: 'ssh', address: '203.0.113.1', port: 22, user: 'admin', become: 'sudo', key });
    expect(inv.hosts.get('me')!.conn).toMatchObject({ connection: 'local', address: 'localhost' });
  });

  it('merges vars: all < parent < child < host, mappings deeply, lists replaced, null kept', async () => {
    const { inv } = await load();
    const db1 = inv.hosts.get('db1')!;
    expect(db1.vars).toEqual({
      level: 'primary',
      shared: { all: 1, file_all: 1, pg: 1, host: 1, host_file: 1 },
      list: [3],
      nothing: null,
    });
    expect(inv.hosts.get('web1')!.vars.level).toBe('web');
    expect(inv.hosts.get('db2')!.vars).toEqual({ level: 'postgres', shared: { all: 1, file_all: 1, pg: 1 }, list: [1, 2] });
  });

  it('records provenance per top-level var with file:line', async () => {
    const { inv } = await load();
    const levels = inv.hosts.get('db1')!.provenance.get('level')!;
    expect(levels.map((l) => [l.level, l.scope, l.value, l.pos?.file, l.pos?.line])).toEqual([
      ['group', 'all', 'all', 'inventories/stage/group_vars/all.yaml', 1],
      ['group', 'postgres', 'postgres', 'inventories/stage/group_vars/postgres.yaml', 1],
      ['group', 'postgres_primary', 'primary', 'inventories/stage/group_vars/postgres_primary.yaml', 1],
    ]);
    const shared = inv.hosts.get('db1')!.provenance.get('shared')!;
    expect(shared.map((l) => `${l.level}:${l.scope ?? ''}@${l.pos?.file}:${l.pos?.line}`)).toEqual([
      'group:all@inventories/stage/hosts.yaml:26',
      'group:all@inventories/stage/group_vars/all.yaml:2',
      'group:postgres@inventories/stage/group_vars/postgres.yaml:2',
      'host:@inventories/stage/hosts.yaml:11',
      'host:@inventories/stage/host_vars/db1.yml:1',
    ]);
  });

  it('decrypts !vault values with the key path relative to the vars root (real vault)', async () => {
    const keyring = new Keyring({ default: 'inventory-test-password' });
    const fast = { params: { N: 1024, r: 8, p: 1 } };
    const enc = (value: string, keyPath: string) => encryptValue(value, keyPath, keyring, 'default', undefined, fast);
    const root = tmpTree({
      'hosts.yaml': `hosts:\n  db1:\n    address: a\n    becomePassword: !vault ${enc('sudo-pass', 'becomePassword')}\n    vars:\n      db: {password: !vault ${enc('pg-pass', 'db.password')}}\n`,
      'group_vars/all.yaml': `api:\n  token: !vault ${enc('tok-123', 'api.token')}\n`,
    });
    const inv = await loadInventory(root, { cwd: root, decryptor: createDecryptor(keyring) });
    const db1 = inv.hosts.get('db1')!;
    expect(db1.conn.becomePassword).toBeInstanceOf(Secret);
    expect(db1.conn.becomePassword!.reveal()).toBe('sudo-pass');
    expect((db1.vars.db as { password: Secret }).password.reveal()).toBe('pg-pass');
    expect((db1.vars.api as { token: Secret }).token.reveal()).toBe('tok-123');
  });

  it('a value moved to another key does not decrypt (key path bound)', async () => {
    const keyring = new Keyring({ default: 'inventory-test-password' });
    const envelope = encryptValue('pg-pass', 'db.password', keyring, 'default', undefined, { params: { N: 1024, r: 8, p: 1 } });
    const root = tmpTree({ 'hosts.yaml': 'hosts: {}\n', 'group_vars/all.yaml': `other: !vault ${envelope}\n` });
    await expect(loadInventory(root, { cwd: root, decryptor: createDecryptor(keyring) })).rejects.toThrow(/cannot decrypt other/);
  });
});

describe('shipped inventories', () => {
  it.each(['lab', 'prod'])('%s loads with the production topology', async (env) => {
    const inv = await loadInventory(env, { cwd: REPO, decryptor: lockedDecryptor });
    expect([...inv.hosts.keys()]).toEqual(['bastion', 'lb1', 'lb2', 'api1', 'api2', 'db1', 'db2', 'redis1', 'redis2', 'mon1', 'backup1']);
    expect(inv.hosts.get('bastion')!.conn.bastion).toBeUndefined();
    for (const h of inv.hosts.values()) if (h.name !== 'bastion') expect(h.conn.bastion).toBe('bastion');
    expect(inv.hosts.get('db2')!.groups).toEqual(['all', 'postgres', 'postgres_replica']);
    expect(inv.hosts.get('mon1')!.groups).toEqual(['all', 'monitoring', 'sentinel']);
    expect(inv.hosts.get('backup1')!.groups).toEqual(['all', 'backup']);
    expect(typeof inv.hosts.get('lb1')!.vars.vip).toBe('string');
  });
});
