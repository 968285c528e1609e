import { describe, it, expect, afterAll } from 'vitest';
import { mergeVars, explainVar, parseExtraVars, extraVarsLayers } from '../../../src/inventory/vars.js';
import { loadInventory } from '../../../src/inventory/load.js';
import { UserError, formatPos } from '../../../src/errors.js';
import { Secret } from '../../../src/secrets/secret.js';
import { tmpTree, removeTrees } from './tmp-tree.js';

afterAll(removeTrees);

describe('mergeVars (lowest first)', () => {
  const secret = new Secret('s3cret-value');
  it.each([
    ['later scalar wins', [{ a: 1 }, { a: 2 }], { a: 2 }],
    ['keys from every level', [{ a: 1 }, { b: 2 }], { a: 1, b: 2 }],
    ['mappings merge deeply', [{ db: { host: 'x', port: 5432, opts: { a: 1 } } }, { db: { port: 5433, opts: { b: 2 } } }], { db: { host: 'x', port: 5433, opts: { a: 1, b: 2 } } }],
    ['lists replace', [{ l: [1, 2, 3] }, { l: [4] }], { l: [4] }],
    ['null replaces', [{ a: { b: 1 } }, { a: null }], { a: null }],
    ['a value replaces null', [{ a: null }, { a: { b: 1 } }], { a: { b: 1 } }],
    ['scalar replaces mapping', [{ a: { b: 1 } }, { a: 'flat' }], { a: 'flat' }],
    ['mapping replaces scalar', [{ a: 'flat' }, { a: { b: 1 } }], { a: { b: 1 } }],
    ['secret is a value, not merged into', [{ a: { b: 1 } }, { a: secret }], { a: secret }],
    ['undefined levels are skipped', [undefined, { a: 1 }, undefined], { a: 1 }],
  ] as const)('%s', (_name, levels, expected) => {
    expect(mergeVars(levels as never)).toEqual(expected);
  });

  it('never modifies its inputs', () => {
    const low = { db: { host: 'x' } };
    const high = { db: { port: 1 } };
    const out = mergeVars([low, high]);
    (out.db as Record<string, unknown>).extra = true;
    expect(low).toEqual({ db: { host: 'x' } });
    expect(high).toEqual({ db: { port: 1 } });
  });

  it('keeps the Secret instance', () => {
    const out = mergeVars([{ x: { s: secret } }, { x: { t: 1 } }]);
    expect((out.x as { s: Secret }).s).toBe(secret);
  });
});

describe('parseExtraVars', () => {
  const cwd = tmpTree({
    'extra.yaml': 'db:\n  port: 6543\nflag: true\n',
    'list.yaml': '- a\n',
    'bad.yaml': 'a: [1\n',
  });
  it.each([
    [['a=1'], { a: 1 }],
    [['a=1.5'], { a: 1.5 }],
    [['a=true'], { a: true }],
    [['a=null'], { a: null }],
    [['a="5"'], { a: '5' }],
    [['a=hello world'], { a: 'hello world' }],
    [['a='], { a: '' }],
    [['a=x=y'], { a: 'x=y' }],
    [['a={b: 1}'], { a: '{b: 1}' }],
    [['db.port=5433'], { db: { port: 5433 } }],
    [['{"a": 1, "b": {"c": [1, 2]}}'], { a: 1, b: { c: [1, 2] } }],
    [['@extra.yaml'], { db: { port: 6543 }, flag: true }],
    [['@extra.yaml', 'db.host=x', 'flag=false'], { db: { port: 6543, host: 'x' }, flag: false }],
    [['a=1', 'a=2'], { a: 2 }],
  ])('%j → %j', (args, expected) => {
    expect(parseExtraVars(args, cwd)).toEqual(expected);
  });

  it.each([
    ['noequals', /invalid extra var/],
    ['=1', /invalid extra var/],
    ['bad-key=1', /invalid extra var/],
    ['{"a": ', /invalid extra vars mapping/],
    ['@missing.yaml', /cannot read extra vars file missing\.yaml/],
    ['@list.yaml', /must be a mapping/],
    ['@bad.yaml', /invalid YAML/],
  ])('%s is rejected', (arg, message) => {
    let err: unknown;
    try {
      parseExtraVars([arg], cwd);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(message);
  });
});

describe('explainVar', () => {
  it('lists every level, lowest first, with file:line', async () => {
    const dir = tmpTree({
      'hosts.yaml': 'hosts:\n  web1:\n    address: a\n    groups: [web]\n    vars:\n      port: 8081\ngroups:\n  web: {}\n',
      'group_vars/all.yaml': 'port: 80\n',
      'group_vars/web.yaml': '\nport: 8080\n',
      'extra.yaml': 'a: 1\nport: 9998\n',
    });
    const inv = await loadInventory(dir, { cwd: dir });
    const levels = explainVar(inv, 'web1', 'port', {
      roleDefaults: { port: 1 },
      plays: [{ name: 'web', vars: { port: 9000 }, posOf: () => ({ file: 'site.yaml', line: 3 }) }],
      extra: extraVarsLayers(['@extra.yaml', 'port=9999', 'other=1'], dir),
    });
    expect(levels.map((l) => [l.level, l.scope, l.value, l.pos && formatPos(l.pos)])).toEqual([
      ['role default', undefined, 1, undefined],
      ['group', 'all', 80, 'group_vars/all.yaml:1:1'],
      ['group', 'web', 8080, 'group_vars/web.yaml:2:1'],
      ['host', undefined, 8081, 'hosts.yaml:6:7'],
      ['play', 'web', 9000, 'site.yaml:3'],
      ['extra', undefined, 9998, 'extra.yaml:2:1'],
      ['extra', undefined, 9999, '-e (command line)'],
    ]);
    expect(explainVar(inv, 'web1', 'nothing')).toEqual([]);
    expect(() => explainVar(inv, 'web2', 'port')).toThrow(/unknown host "web2"/);
  });
});
