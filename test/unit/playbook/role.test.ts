import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { z } from 'zod';
import { loadRole, defineRole, isRole, validateRoleVars, type RoleDef } from '../../../src/playbook/role.js';
import { UserError, UserErrors } from '../../../src/errors.js';
import type { VarSource } from '../../../src/inventory/types.js';

const ROLES = join(__dirname, '..', '..', 'fixtures', 'playbook', 'roles');
const EMPTY = join(__dirname, '..', '..', 'fixtures', 'playbook', 'no-roles-here');

async function failure(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error('expected a UserError');
}

describe('loadRole', () => {
  it('imports <dir>/<name>/role.ts (importing from "infra") and adds its dir', async () => {
    const role = await loadRole('greet', [EMPTY, ROLES]);
    expect(role.name).toBe('greet');
    expect(role.dir).toBe(join(ROLES, 'greet'));
    expect(role.file).toBe(join(ROLES, 'greet', 'role.ts'));
    expect(isRole(role)).toBe(true);
    expect(Object.keys(role.handlers ?? {})).toEqual(['say bye']);
    const tasks = role.tasks({
      vars: { greeting: 'hi', times: 2 },
      host: { name: 'web1', address: '10.0.0.1', groups: ['all'], facts: {} as never },
      hosts: () => [],
      inventory: {} as never,
    });
    expect(tasks.map((t) => [t.module.name, t.params])).toEqual([
      ['command.run', { cmd: 'echo hi web1' }],
      ['command.run', { cmd: 'echo hi web1' }],
    ]);
  });

  it.each([
    ['gret', /unknown role "gret" — did you mean "greet"\?/, /roles: broken, greet, misnamed, plain/],
    ['../greet', /invalid role name/, /letters, digits/],
    ['plain', /does not default-export a role/, /export default defineRole/],
    ['misnamed', /is named "other"/, /name: 'misnamed'/],
    ['broken', /cannot load role "broken".*broken on purpose/, /fix the error/],
  ])('%s → %s', async (name, message, hint) => {
    const e = await failure(loadRole(name, [ROLES]));
    expect(e.message).toMatch(message);
    expect(e.hint).toMatch(hint);
  });

  it('names the referencing position when given', async () => {
    const e = await failure(loadRole('nope', [ROLES], { file: 'site.yaml', line: 4, col: 12 }));
    expect(e.format()).toMatch(/^site\.yaml:4:12: unknown role "nope"/);
  });
});

describe('defineRole', () => {
  it('defaults vars to an empty schema and marks the result as a role', () => {
    const r = defineRole({ name: 'x', tasks: () => [] });
    expect(isRole(r)).toBe(true);
    expect(r.vars.parse({ anything: 1 })).toEqual({});
    expect(isRole({ name: 'x', tasks: () => [] })).toBe(false);
  });
});

describe('validateRoleVars', () => {
  const role: RoleDef = {
    ...defineRole({
      name: 'web',
      vars: z.object({ port: z.number().int().default(80), name: z.string(), tls: z.object({ enabled: z.boolean() }).optional() }),
      tasks: () => [],
    }),
    dir: '/roles/web',
    file: '/roles/web/role.ts',
  };
  const provenance = new Map<string, VarSource[]>([
    ['port', [{ level: 'group', scope: 'web', value: 'eighty', pos: { file: 'group_vars/web.yaml', line: 3, col: 1 } }]],
    ['tls', [{ level: 'host', value: { enabled: 'yes' }, pos: { file: 'host_vars/web1.yaml', line: 7, col: 1 } }]],
  ]);

  it('returns parsed vars with defaults, ignoring other roles\' vars', () => {
    expect(validateRoleVars(role, { name: 'site', unrelated: [1] }, new Map())).toEqual({ port: 80, name: 'site' });
  });

  it('points each error at where the var was set, or at the role for a missing one', () => {
    let err: unknown;
    try {
      validateRoleVars(role, { port: 'eighty', tls: { enabled: 'yes' } }, provenance);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserErrors);
    const lines = (err as UserErrors).errors.map((e) => e.format().split('\n')[0]);
    expect(lines).toEqual([
      'group_vars/web.yaml:3:1: role web: variable port: expected number, got string "eighty"',
      '/roles/web/role.ts: role web: required variable name is not set',
      'host_vars/web1.yaml:7:1: role web: variable tls.enabled: expected boolean, got string "yes"',
    ]);
  });

  it('says when the bad value came from play vars or -e (not the inventory)', () => {
    let err: unknown;
    try {
      validateRoleVars(role, { name: 'x', port: 'from-extra' }, provenance);
    } catch (e) {
      err = e;
    }
    expect((err as UserError).format()).toMatch(/^\/roles\/web\/role\.ts: role web: variable port: expected number, got string "from-extra" \(set by play vars or -e\)/);
  });
});
