/** prepare: every input error found before connecting, collected across hosts and plays. */
import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import { preparePlays, type PrepareInput } from '../../../src/engine/prepare.js';
import { defineRole, type RoleDef } from '../../../src/playbook/role.js';
import { makeTask } from '../../../src/modules/types.js';
import { moduleRegistry } from '../../../src/modules/index.js';
import { createRenderer } from '../../../src/render/template.js';
import { UserError, UserErrors } from '../../../src/errors.js';
import type { Inventory, HostSpec } from '../../../src/inventory/types.js';
import type { Play } from '../../../src/playbook/schema.js';
import type { Facts } from '../../../src/facts/types.js';

function inventory(hosts: Record<string, { groups: string[]; vars?: Record<string, unknown> }>): Inventory {
  const specs = new Map<string, HostSpec>(
    Object.entries(hosts).map(([n, h]) => [
      n,
      { name: n, conn: { connection: 'ssh', address: `10.0.0.${n.length}`, port: 22, user: 'admin', become: 'sudo' }, groups: ['all', ...h.groups], vars: h.vars ?? {}, provenance: new Map() },
    ]),
  );
  const groups = new Map([...new Set(['all', ...Object.values(hosts).flatMap((h) => h.groups)])].map((g) => [g, { name: g, children: [], hosts: [], vars: {} }]));
  return { env: 'test', dir: '/tmp/inv', hosts: specs, groups, knownHostsPath: '/tmp/inv/known_hosts' };
}

const role = (name: string, vars: z.ZodTypeAny): RoleDef =>
  ({ ...defineRole({ name, vars, tasks: ({ vars: v }) => [makeTask(moduleRegistry.get('files.directory')!, { path: `/srv/${(v as { dir: string }).dir}` })] }), dir: '/tmp/roles/' + name, file: '/tmp/roles/' + name + '/role.ts' }) as unknown as RoleDef;

const play = (p: Partial<Play>): Play => ({ name: 'p', hosts: 'all', roles: [], tasks: [], handlers: {}, vars: {}, anyErrorsFatal: false, tags: [], ...p });
const renderer = createRenderer({ sharedDir: '/nonexistent' });
const input = (inv: Inventory, plays: Play[], extra: Partial<PrepareInput> = {}): PrepareInput => ({
  inventory: inv,
  plays,
  extraVars: {},
  playbookDir: '/tmp/pb',
  renderString: renderer.renderString,
  ...extra,
});
const errorsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof UserErrors) return e.errors.map((x) => x.format());
    if (e instanceof UserError) return [e.format()];
    throw e;
  }
  return [];
};

describe('preparePlays', () => {
  const inv = inventory({ web1: { groups: ['web'], vars: { dir: 'w1' } }, web2: { groups: ['web'] }, db1: { groups: ['db'], vars: { dir: 'd1' } } });
  const r = role('app', z.object({ dir: z.string() }));

  it('builds batches and per-host tasks from role vars (host vars < play vars < extra vars)', () => {
    const plays = preparePlays(input(inv, [play({ hosts: 'web1:db1', roles: [{ role: r, vars: {} }], serial: [1] })], { extraVars: {} }));
    expect(plays[0].batches).toEqual([['web1'], ['db1']]);
    const tasks = plays[0].byHost.get('db1')!.tasks({} as Facts, () => []);
    expect(tasks[0].task.params).toEqual({ path: '/srv/d1' });
    const withExtra = preparePlays(input(inv, [play({ hosts: 'db1', roles: [{ role: r, vars: {} }], vars: { dir: 'play' } })], { extraVars: { dir: 'extra' } }));
    expect(withExtra[0].byHost.get('db1')!.tasks({} as Facts, () => [])[0].task.params).toEqual({ path: '/srv/extra' });
  });

  it('collects role variable errors for every host before connecting', () => {
    const errs = errorsOf(() => preparePlays(input(inv, [play({ hosts: 'web', roles: [{ role: r, vars: {} }] })])));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/dir/);
  });

  it('templates YAML task params per host and validates them against the module', () => {
    const ok = makeTask(moduleRegistry.get('files.directory')!, { path: '/srv/{{ host.name }}' });
    const plays = preparePlays(input(inv, [play({ hosts: 'web', tasks: [ok] })]));
    expect(plays[0].byHost.get('web2')!.tasks({} as Facts, () => [])[0].task.params).toEqual({ path: '/srv/web2' });
    const bad = { ...makeTask(moduleRegistry.get('files.directory')!, { path: '{{ vars.relative }}' }), origin: { file: 'site.yaml', line: 7, col: 7 } };
    const errs = errorsOf(() => preparePlays(input(inventory({ h: { groups: [], vars: { relative: 'not/absolute' } } }), [play({ tasks: [bad] })])));
    expect(errs[0]).toMatch(/^site\.yaml:7:7: invalid parameters for files\.directory on h: path: must be an absolute path/);
  });

  it('a missing template variable is an input error', () => {
    const t = { ...makeTask(moduleRegistry.get('files.directory')!, { path: '/srv/{{ vars.nope }}' }), origin: { file: 'site.yaml', line: 3 } };
    expect(errorsOf(() => preparePlays(input(inv, [play({ hosts: 'db1', tasks: [t] })])))[0]).toMatch(/nope/);
  });

  it('rejects a task that notifies an unknown handler, with a did-you-mean hint', () => {
    const t = { ...makeTask(moduleRegistry.get('files.directory')!, { path: '/srv' }, { notify: 'restart ngnix' }), origin: { file: 'site.yaml', line: 9, col: 7 } };
    const handlers = { 'restart nginx': makeTask(moduleRegistry.get('systemd.service')!, { name: 'nginx', state: 'restarted' }) };
    const errs = errorsOf(() => preparePlays(input(inv, [play({ hosts: 'db1', tasks: [t], handlers })])));
    expect(errs).toEqual(['site.yaml:9:7: task notifies unknown handler "restart ngnix"\n  hint: did you mean "restart nginx"?']);
  });

  it('a bad host pattern names the play line', () => {
    const errs = errorsOf(() => preparePlays(input(inv, [play({ hosts: 'wbe', hostsPos: { file: 'site.yaml', line: 2, col: 10 } })])));
    expect(errs[0]).toMatch(/^site\.yaml:2:10: host pattern "wbe": no host or group named "wbe"/);
  });

  it('--limit intersects every play', () => {
    const plays = preparePlays(input(inv, [play({ hosts: 'all' })], { limit: 'web*' }));
    expect(plays[0].hosts).toEqual(['web1', 'web2']);
  });
});
