import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { z } from 'zod';
import { loadPlaybook } from '../../../src/playbook/load.js';
import { UserError, UserErrors } from '../../../src/errors.js';
import type { Module } from '../../../src/modules/types.js';
import { moduleRegistry } from '../../../src/modules/index.js';
import { Keyring, createDecryptor, encryptValue } from '../../../src/secrets/vault.js';
import { tmpTree, removeTrees } from '../inventory/tmp-tree.js';

afterAll(removeTrees);

const ROLES = join(__dirname, '..', '..', 'fixtures', 'playbook', 'roles');
const REPO = join(__dirname, '..', '..', '..');

/** A module with a real params schema; loading never runs it. */
function fakeModule<P>(name: `${string}.${string}`, params: z.ZodType<P, z.ZodTypeDef, unknown>): Module<P> {
  const never = () => {
    throw new Error('loading a playbook must not run modules');
  };
  return { name, params, describe: () => name, check: never, apply: never };
}

const modules = new Map<string, Module<any>>([
  ['demo.line', fakeModule('demo.line', z.object({ path: z.string().startsWith('/'), line: z.string(), mode: z.string().regex(/^0[0-7]{3}$/).optional(), count: z.number().int().optional() }).strict())],
  ['demo.service', fakeModule('demo.service', z.object({ name: z.string(), state: z.enum(['started', 'stopped']).default('started') }).strict())],
]);

async function load(text: string) {
  const dir = tmpTree({ 'site.yaml': text });
  return loadPlaybook(join(dir, 'site.yaml'), { modules, rolesDirs: [ROLES], cwd: dir });
}

async function errorsOf(text: string): Promise<string[]> {
  try {
    await load(text);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return (e instanceof UserErrors ? e.errors : [e]).map((x) => x.format());
  }
  throw new Error('expected the playbook to be rejected');
}

describe('loadPlaybook builds plays', () => {
  it('resolves roles, tasks, handlers and options', async () => {
    const pb = await load(
      [
        '- name: web',
        '  hosts: web:&prod',
        '  serial: [1, "50%"]',
        '  maxFailPercentage: 25',
        '  anyErrorsFatal: true',
        '  tags: [web]',
        '  vars: {greeting: hey}',
        '  roles:',
        '    - greet',
        '    - {role: greet, vars: {times: 2}}',
        '  tasks:',
        '    - demo.line: {path: /etc/motd, line: "managed by infra"}',
        '      name: motd',
        '      notify: restart web',
        '      tags: [motd]',
        '      ignoreErrors: true',
        '    - demo.service: {name: nginx}',
        '  handlers:',
        '    restart web:',
        '      demo.service: {name: nginx, state: started}',
        '- hosts: db',
        '  serial: 2',
        '',
      ].join('\n'),
    );
    expect(pb.file).toBe('site.yaml');
    const [web, db] = pb.plays;
    expect(web).toMatchObject({ name: 'web', hosts: 'web:&prod', serial: [1, '50%'], maxFailPercentage: 25, anyErrorsFatal: true, tags: ['web'], vars: { greeting: 'hey' } });
    expect(web.pos).toEqual({ file: 'site.yaml', line: 1, col: 3 });
    expect(web.hostsPos).toEqual({ file: 'site.yaml', line: 2, col: 10 });
    expect(web.varsPos?.greeting).toMatchObject({ file: 'site.yaml', line: 7, col: 10 });
    expect(web.roles.map((r) => [r.role.name, r.vars, r.pos?.line])).toEqual([
      ['greet', {}, 9],
      ['greet', { times: 2 }, 10],
    ]);
    expect(web.roles[0].role.dir).toBe(join(ROLES, 'greet'));
    expect(web.tasks.map((t) => ({ m: t.module.name, p: t.params, n: t.name, notify: t.notify, tags: t.tags, ie: t.ignoreErrors, line: t.origin?.line }))).toEqual([
      { m: 'demo.line', p: { path: '/etc/motd', line: 'managed by infra' }, n: 'motd', notify: ['restart web'], tags: ['motd'], ie: true, line: 12 },
      { m: 'demo.service', p: { name: 'nginx' }, n: undefined, notify: [], tags: [], ie: false, line: 17 },
    ]);
    expect(web.handlers['restart web']).toMatchObject({ name: 'restart web', params: { name: 'nginx', state: 'started' } });
    expect(db).toMatchObject({ name: 'db', hosts: 'db', serial: [2], anyErrorsFatal: false, roles: [], tasks: [], tags: [] });
  });

  it('defers checks of templated strings to per-host templating, but not unknown or missing keys', async () => {
    const pb = await load('- hosts: all\n  tasks:\n    - demo.line: {path: "{{ vars.dir }}/motd", line: x, count: "{{ vars.n }}"}\n');
    expect(pb.plays[0].tasks[0].params).toEqual({ path: '{{ vars.dir }}/motd', line: 'x', count: '{{ vars.n }}' });
    const errors = await errorsOf('- hosts: all\n  tasks:\n    - demo.line: {path: "{{ vars.dir }}", lien: x}\n');
    expect(errors.join('\n')).toMatch(/unknown key "lien" — did you mean "line"\?/);
    expect(errors.join('\n')).toMatch(/missing required key "line"/);
  });

  it('decrypts !vault play vars with the key path relative to vars', async () => {
    const keyring = new Keyring({ default: 'playbook-test-password' });
    const env = encryptValue('pg-pass', 'db.password', keyring, 'default', undefined, { params: { N: 1024, r: 8, p: 1 } });
    const dir = tmpTree({ 'site.yaml': `- hosts: all\n  vars:\n    db:\n      password: !vault ${env}\n` });
    const pb = await loadPlaybook(join(dir, 'site.yaml'), { modules, rolesDirs: [ROLES], cwd: dir, decryptor: createDecryptor(keyring) });
    expect((pb.plays[0].vars.db as { password: { reveal(): string } }).password.reveal()).toBe('pg-pass');
  });
});

describe('loadPlaybook rejects bad input with file:line:col', () => {
  it.each([
    ['not a list', 'hosts: all\n', /^site\.yaml:1:1: \(top level\): a playbook is a list of plays/],
    ['empty playbook', '[]\n', /a playbook needs at least one play/],
    ['malformed YAML', '- hosts: all\n  tasks: [\n', /^site\.yaml:\d+:\d+: invalid YAML/],
    ['duplicate key', '- hosts: all\n  hosts: web\n', /^site\.yaml:2:3: invalid YAML: Map keys must be unique/],
    ['unknown play key', '- hosts: all\n  role: [greet]\n', /^site\.yaml:2:3: \[0\]: unknown key "role" — did you mean "roles"\?/],
    ['missing hosts', '- name: x\n', /^site\.yaml:1:3: \[0\]: missing required key "hosts"/],
    ['wrong type', '- hosts: all\n  anyErrorsFatal: "yes"\n', /^site\.yaml:2:19: \[0\]\.anyErrorsFatal: expected boolean, got string "yes"/],
    ['bad serial', '- hosts: all\n  serial: "half"\n', /^site\.yaml:2:11: \[0\]\.serial: expected a number or a percentage like "30%"/],
    ['maxFailPercentage range', '- hosts: all\n  maxFailPercentage: 150\n', /\[0\]\.maxFailPercentage: Number must be less than or equal to 100, got number 150/],
    ['unknown role', '- hosts: all\n  roles: [gret]\n', /^site\.yaml:2:11: unknown role "gret" — did you mean "greet"\?/],
    ['role ref unknown key', '- hosts: all\n  roles:\n    - {role: greet, var: {}}\n', /^site\.yaml:3:21: \[0\]\.roles\[0\]: unknown key "var" — did you mean "vars"\?/],
    ['unknown module', '- hosts: all\n  tasks:\n    - demo.lien: {path: /a, line: b}\n', /^site\.yaml:3:7: \[0\]\.tasks\[0\]: unknown module "demo.lien" — did you mean "demo.line"\?/],
    ['two modules', '- hosts: all\n  tasks:\n    - demo.line: {path: /a, line: b}\n      demo.service: {name: x}\n', /a task calls one module, found demo.line, demo.service/],
    ['no module', '- hosts: all\n  tasks:\n    - name: nothing\n', /^site\.yaml:3:7: \[0\]\.tasks\[0\]: no module in this task/],
    ['unknown task option', '- hosts: all\n  tasks:\n    - demo.line: {path: /a, line: b}\n      notfy: x\n', /^site\.yaml:4:7: \[0\]\.tasks\[0\]: unknown key "notfy" — did you mean "notify"\?/],
    ['bad task option type', '- hosts: all\n  tasks:\n    - demo.line: {path: /a, line: b}\n      ignoreErrors: sure\n', /\[0\]\.tasks\[0\]\.ignoreErrors: expected boolean, got string "sure"/],
    ['task is not a mapping', '- hosts: all\n  tasks:\n    - demo.line\n', /^site\.yaml:3:7: \[0\]\.tasks\[0\]: a task is a mapping/],
    ['params not a mapping', '- hosts: all\n  tasks:\n    - demo.line: /etc/motd\n', /^site\.yaml:3:18: \[0\]\.tasks\[0\]\.demo\.line: module parameters must be a mapping/],
    ['param unknown key', '- hosts: all\n  tasks:\n    - demo.line: {path: /a, lien: b}\n', /^site\.yaml:3:29: \[0\]\.tasks\[0\]\.demo\.line: unknown key "lien" — did you mean "line"\?/],
    ['param wrong type', '- hosts: all\n  tasks:\n    - demo.line: {path: /a, line: b, count: many}\n', /^site\.yaml:3:45: \[0\]\.tasks\[0\]\.demo\.line\.count: expected number, got string "many"/],
    ['param refinement', '- hosts: all\n  tasks:\n    - demo.line: {path: /a, line: b, mode: "999"}\n', /\.demo\.line\.mode: Invalid, got string "999"/],
    ['handler param error', '- hosts: all\n  handlers:\n    restart:\n      demo.service: {name: x, state: restarted}\n', /^site\.yaml:4:38: \[0\]\.handlers\.restart\.demo\.service\.state: Invalid enum value/],
    ['!vault in task params', '- hosts: all\n  tasks:\n    - demo.line: {path: /a, line: !vault x}\n', /a !vault value is not allowed here/],
  ])('%s', async (_name, text, expected) => {
    const errors = await errorsOf(text);
    expect(errors.some((e) => expected.test(e)), errors.join('\n---\n')).toBe(true);
  });

  it('collects errors across plays and tasks', async () => {
    const errors = await errorsOf(
      '- hosts: all\n  roles: [nope]\n  tasks:\n    - demo.lien: {}\n- hosts: db\n  tasks:\n    - demo.service: {name: 1}\n',
    );
    expect(errors).toHaveLength(3);
  });
});

describe('shipped playbooks', () => {
  it('playbooks/site.yaml loads with the real modules and roles', async () => {
    const pb = await loadPlaybook(join(REPO, 'playbooks', 'site.yaml'), { modules: moduleRegistry, rolesDirs: [join(REPO, 'roles')], cwd: REPO });
    expect(pb.plays.map((p) => [p.name, p.hosts, p.roles.map((r) => r.role.name)])).toEqual([
      ['bastion', 'bastion', ['bastion']],
      ['baseline', 'all', ['hardening', 'ca-trust', 'node-exporter']],
      ['vpn', 'bastion', ['vpn']],
      ['load balancers', 'lb', ['haproxy-keepalived']],
      ['postgres primary', 'postgres_primary', ['postgres']],
      ['postgres replicas', 'postgres_replica', ['postgres']],
      ['postgres backup repository', 'backup', ['postgres']],
      ['redis and sentinel', 'redis:sentinel', ['redis-sentinel']],
      ['api', 'api', ['api']],
      ['monitoring', 'monitoring', ['monitoring']],
      ['central logs', 'all', ['journal-upload']],
    ]);
  });

  it('playbooks/deploy-api.yaml: the api play alone, one host at a time, stopping at the first failure', async () => {
    const pb = await loadPlaybook(join(REPO, 'playbooks', 'deploy-api.yaml'), { modules: moduleRegistry, rolesDirs: [join(REPO, 'roles')], cwd: REPO });
    expect(pb.plays.map((p) => [p.hosts, p.serial, p.maxFailPercentage, p.roles.map((r) => r.role.name)])).toEqual([['api', [1], 0, ['api']]]);
  });
});
