import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { selectHosts, globToRegExp } from '../../../src/inventory/limit.js';
import { loadInventory } from '../../../src/inventory/load.js';
import type { Inventory } from '../../../src/inventory/types.js';
import { UserError } from '../../../src/errors.js';
import { tmpTree, removeTrees } from './tmp-tree.js';

let inv: Inventory;
beforeAll(async () => {
  const dir = tmpTree({
    'hosts.yaml': [
      'hosts:',
      '  bastion: {address: a, groups: [bastion], bastion: null}',
      '  web1: {address: a, groups: [web, prod]}',
      '  web2: {address: a, groups: [web, staging]}',
      '  web10: {address: a, groups: [web, prod]}',
      '  db1: {address: a, groups: [postgres_primary, prod]}',
      '  db2: {address: a, groups: [postgres_replica, prod]}',
      'groups:',
      '  bastion: {}',
      '  web: {}',
      '  prod: {}',
      '  staging: {}',
      '  empty: {}',
      '  postgres: {children: [postgres_primary, postgres_replica]}',
      '  postgres_primary: {}',
      '  postgres_replica: {}',
      '',
    ].join('\n'),
  });
  inv = await loadInventory(dir, { cwd: dir });
});
afterAll(removeTrees);

describe('selectHosts', () => {
  it.each([
    ['all', ['bastion', 'web1', 'web2', 'web10', 'db1', 'db2']],
    ['*', ['bastion', 'web1', 'web2', 'web10', 'db1', 'db2']],
    ['web1', ['web1']],
    ['bastion', ['bastion']], // host and group of the same name
    ['web', ['web1', 'web2', 'web10']],
    ['postgres', ['db1', 'db2']], // child groups included
    ['empty', []],
    ['web*', ['web1', 'web2', 'web10']],
    ['web?', ['web1', 'web2']],
    ['db[12]', ['db1', 'db2']],
    ['web[!1]', ['web2']],
    ['postgres_*', ['db1', 'db2']], // globs match group names too
    ['db2:web1', ['web1', 'db2']], // inventory order, not pattern order
    ['db2,web1', ['web1', 'db2']],
    ['web:&prod', ['web1', 'web10']],
    ['&prod:web', ['web1', 'web10']], // order of operators does not matter
    ['web:!web2', ['web1', 'web10']],
    ['all:!postgres:!bastion', ['web1', 'web2', 'web10']],
    ['!web', ['bastion', 'db1', 'db2']], // exclusions only start from all
    ['web:db1:&prod:!web10', ['web1', 'db1']],
    ['nomatch*', []],
    [' web1 : db1 ', ['web1', 'db1']],
  ])('%s → %j', (pattern, expected) => {
    expect(selectHosts(inv, pattern)).toEqual(expected);
  });

  it.each([
    ['wweb', /no host or group named "wweb" — did you mean "web"\?/],
    ['web:&prdo', /no host or group named "prdo" — did you mean "prod"\?/],
    ['web:!db3', /no host or group named "db3" — did you mean "db1"\?/],
    ['', /invalid host pattern/],
    ['web::db1', /invalid host pattern/],
    ['web:!', /invalid host pattern/],
  ])('%j is rejected', (pattern, message) => {
    let err: unknown;
    try {
      selectHosts(inv, pattern);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(message);
  });
});

describe('globToRegExp', () => {
  it.each([
    ['a.b*', 'a.bc', true],
    ['a.b*', 'axbc', false],
    ['x[a-c]', 'xb', true],
    ['x[a-c]', 'xd', false],
    ['x[', 'x[', true],
    ['(a)', '(a)', true],
  ])('%s ~ %s = %s', (glob, name, matches) => {
    expect(globToRegExp(glob).test(name)).toBe(matches);
  });
});
