/**
 * Hostile YAML in every file the loaders read: an alias bomb stops fast with file:line, and
 * keys that reach an object's prototype are refused in inventory, group_vars, host_vars,
 * playbooks and every form of -e.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { parseYaml, MAX_ALIASED_VALUES } from '../../../src/yaml/positions.js';
import { loadInventory } from '../../../src/inventory/load.js';
import { mergeVars, parseExtraVars } from '../../../src/inventory/vars.js';
import { loadPlaybook } from '../../../src/playbook/load.js';
import { moduleRegistry } from '../../../src/modules/index.js';
import { UserError, UserErrors } from '../../../src/errors.js';
import { tmpTree, removeTrees } from '../inventory/tmp-tree.js';
import { aliasBomb } from './alias-bomb.js';

afterAll(removeTrees);

/** Every formatted error of a rejected promise or call. */
async function errorsOf(f: () => unknown): Promise<string[]> {
  try {
    await f();
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return (e instanceof UserErrors ? e.errors : [e]).map((x) => x.format());
  }
  throw new Error('expected a UserError');
}

describe('YAML aliases', () => {
  it('an alias bomb stops at the cap, fast, naming the alias', () => {
    const text = aliasBomb();
    expect(text.length).toBeLessThan(500);
    const t0 = Date.now();
    const doc = parseYaml(text, 'hosts.yaml');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(doc.value).toBeUndefined();
    expect(doc.errors.map((e) => e.format())).toEqual([
      `hosts.yaml:10:14: YAML aliases expand to more than ${MAX_ALIASED_VALUES} values\n` +
        '  hint: each use of an alias repeats the anchored value, and nested aliases multiply: write the values out, or nest fewer aliases',
    ]);
  });

  it('the inventory loader refuses it with exit-2 errors', async () => {
    const dir = tmpTree({ 'hosts.yaml': aliasBomb() });
    expect(await errorsOf(() => loadInventory(dir, { cwd: dir }))).toEqual([expect.stringMatching(/^hosts\.yaml:10:14: YAML aliases expand to more than/)]);
  });

  it('ordinary reuse still expands, and errors inside a reused value point at the alias', () => {
    const doc = parseYaml('common: &c {port: 22, users: [a, b]}\nweb: *c\ndb: *c\n', 'h.yaml');
    expect(doc.errors).toEqual([]);
    expect(doc.value).toEqual({ common: { port: 22, users: ['a', 'b'] }, web: { port: 22, users: ['a', 'b'] }, db: { port: 22, users: ['a', 'b'] } });
    expect(doc.pos(['db', 'users', 1])).toEqual({ file: 'h.yaml', line: 3, col: 5 });
    expect(doc.pos(['common', 'users', 1])).toEqual({ file: 'h.yaml', line: 1, col: 34 });
  });
});

describe('keys that reach a prototype', () => {
  const KEYS = ['__proto__', 'constructor', 'prototype'];
  const refused = (key: string) => new RegExp(`"${key}" cannot be a key\\n  hint: .*prototype pollution`);

  it.each(KEYS)('parseYaml refuses "%s" at its line, nested or not', (key) => {
    const doc = parseYaml(`a:\n  b:\n    ${key}: {polluted: 1}\n${key}: 1\n`, 'v.yaml');
    expect(doc.errors.map((e) => e.format())).toEqual([
      expect.stringMatching(new RegExp(`^v\\.yaml:3:5: ${refused(key).source}`)),
      expect.stringMatching(new RegExp(`^v\\.yaml:4:1: ${refused(key).source}`)),
    ]);
  });

  it.each([
    ['hosts.yaml vars', { 'hosts.yaml': 'hosts:\n  h1:\n    address: a\n    vars:\n      __proto__: {polluted: 1}\n' }, /^hosts\.yaml:5:7: /],
    ['hosts.yaml group', { 'hosts.yaml': 'hosts: {}\ngroups:\n  constructor: {}\n' }, /^hosts\.yaml:3:3: /],
    ['group_vars', { 'hosts.yaml': 'hosts: {}\n', 'group_vars/all.yaml': 'db:\n  __proto__:\n    polluted: 1\n' }, /^group_vars\/all\.yaml:2:3: /],
    ['host_vars', { 'hosts.yaml': 'hosts:\n  h1: {address: a}\n', 'host_vars/h1.yaml': 'prototype: 1\n' }, /^host_vars\/h1\.yaml:1:1: /],
  ])('the inventory loader refuses it in %s', async (_name, files, where) => {
    const dir = tmpTree(files);
    const errors = await errorsOf(() => loadInventory(dir, { cwd: dir }));
    expect(errors).toEqual([expect.stringMatching(where)]);
    expect(errors[0]).toMatch(/cannot be a key/);
  });

  it('the playbook loader refuses it in play vars', async () => {
    const dir = tmpTree({ 'site.yaml': '- hosts: all\n  vars:\n    __proto__: {polluted: 1}\n  tasks: []\n' });
    const errors = await errorsOf(() => loadPlaybook(join(dir, 'site.yaml'), { modules: moduleRegistry, rolesDirs: [], cwd: dir }));
    expect(errors).toEqual([expect.stringMatching(/^site\.yaml:3:5: "__proto__" cannot be a key/)]);
  });

  it.each([['-e __proto__.polluted=1'], ['-e a.constructor=1'], ['-e {"__proto__": {"polluted": 1}}'], ['-e @extra.yaml']])('%s is refused', async (arg) => {
    const cwd = tmpTree({ 'extra.yaml': 'x:\n  prototype: 1\n' });
    const errors = await errorsOf(() => parseExtraVars([arg.slice(3)], cwd));
    expect(errors).toEqual([expect.stringMatching(/"(__proto__|constructor|prototype)" cannot be a key/)]);
    if (arg.includes('@')) expect(errors[0]).toMatch(/^extra\.yaml:2:3: /);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(mergeVars([{ a: 1 }]))).toEqual(['a']);
  });
});
