/**
 * YAML task parameters are templated through one path, for tasks and handlers alike (issue 10
 * item 27), with shell fields quoted (item 10); a shell-field template that cannot be quoted
 * safely is refused when the playbook loads, at its line.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { preparePlays } from '../../../src/engine/prepare.js';
import { loadPlaybook } from '../../../src/playbook/load.js';
import { renderTaskParams, SHELL_PARAMS } from '../../../src/playbook/params.js';
import { makeTask, paramKeysOf } from '../../../src/modules/types.js';
import { moduleRegistry } from '../../../src/modules/index.js';
import { createRenderer } from '../../../src/render/template.js';
import { UserError, UserErrors } from '../../../src/errors.js';
import type { Inventory, HostSpec } from '../../../src/inventory/types.js';
import { tmpTree, removeTrees } from '../inventory/tmp-tree.js';

afterAll(removeTrees);

const renderer = createRenderer({ sharedDir: '/nonexistent' });
const command = moduleRegistry.get('command.run')!;

function inventory(vars: Record<string, unknown>): Inventory {
  const spec: HostSpec = { name: 'web1', conn: { connection: 'ssh', address: '10.0.0.1', port: 22, user: 'admin', become: 'sudo' }, groups: ['all'], vars, provenance: new Map() };
  return { env: 'test', dir: '/tmp/inv', hosts: new Map([['web1', spec]]), groups: new Map([['all', { name: 'all', children: [], hosts: [], vars: {} }]]), knownHostsPath: '/tmp/inv/known_hosts' };
}

describe('renderTaskParams', () => {
  const data = { vars: { v: "it's $(id)", dir: '/srv/a b' }, host: { name: 'web1' } };

  it('quotes values in shell fields only', () => {
    const t = makeTask(command, { cmd: 'ls {{vars.dir}}', unless: 'test -e {{vars.v}}', creates: '{{vars.dir}}/x' });
    expect(renderTaskParams(t, data, renderer.renderString)).toEqual({ cmd: "ls '/srv/a b'", unless: `test -e 'it'\\''s $(id)'`, creates: '/srv/a b/x' });
  });

  it('validate of a file writer is a shell field', () => {
    const t = makeTask(moduleRegistry.get('files.file')!, { path: '/etc/x', content: '{{vars.v}}', validate: 'check {{vars.dir}} %s' });
    expect(renderTaskParams(t, data, renderer.renderString)).toMatchObject({ content: "it's $(id)", validate: "check '/srv/a b' %s" });
  });

  it('every module that has a shell field calls it by one of these names', () => {
    // command.run's cmd/unless/onlyIf and every writer's validate: if a module grows another
    // shell-command parameter under another name, this list (and SHELL_PARAMS) must learn it.
    const withShell = [...moduleRegistry.values()].flatMap((m) => [...paramKeysOf(m.params)].filter((k) => SHELL_PARAMS.has(k)).map((k) => `${m.name}.${k}`));
    expect(withShell).toContain('command.run.cmd');
    expect(withShell).toContain('command.run.unless');
    expect(withShell).toContain('command.run.onlyIf');
    expect(withShell).toContain('files.template.validate');
  });
});

describe('YAML handlers are templated like tasks', () => {
  const base = { extraVars: {}, playbookDir: '/tmp/pb', renderString: renderer.renderString };
  const play = (handlers: Record<string, ReturnType<typeof makeTask>>) => ({ name: 'p', hosts: 'all', roles: [], tasks: [], handlers, vars: {}, anyErrorsFatal: false, tags: [] });

  it('a handler cmd is rendered per host, quoted', () => {
    const plays = preparePlays({ ...base, inventory: inventory({ marker: '/tmp/a b' }), plays: [play({ mark: makeTask(command, { cmd: 'touch {{ vars.marker }}' }) })] });
    expect(plays[0].byHost.get('web1')!.handlers.get('mark')!.task.params).toEqual({ cmd: "touch '/tmp/a b'" });
  });

  it("a handler's missing variable is an input error before connecting", () => {
    const h = { ...makeTask(command, { cmd: 'touch {{ vars.nope }}' }), origin: { file: 'site.yaml', line: 9, col: 7 } };
    let err: unknown;
    try {
      preparePlays({ ...base, inventory: inventory({}), plays: [play({ mark: h })] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).format()).toMatch(/site\.yaml:9:7: template "touch \{\{ vars\.nope \}\}": missing variable "vars\.nope"/);
  });
});

describe('loading a playbook', () => {
  it("refuses a {{…}} inside quotes in a task's or a handler's shell field, at its line", async () => {
    const dir = tmpTree({
      'site.yaml': [
        '- hosts: all',
        '  tasks:',
        `    - command.run: { cmd: "echo '{{ vars.x }}'" }`,
        '      notify: h',
        '    - command.run: { cmd: "echo {{ vars.x }}", unless: "grep -q \\"{{ vars.x }}\\" /etc/x" }',
        '  handlers:',
        '    h:',
        `      command.run: { cmd: "logger '{{ vars.x }}'" }`,
        '',
      ].join('\n'),
    });
    let err: unknown;
    try {
      await loadPlaybook(join(dir, 'site.yaml'), { modules: moduleRegistry, rolesDirs: [], cwd: dir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserErrors);
    const lines = (err as UserErrors).errors.map((e) => e.format());
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/site\.yaml:3:27: \[0\]\.tasks\[0\]\.command\.run\.cmd: \{\{…\}\} inside '…': in a shell field its value is already quoted\n {2}hint: .*write it bare/);
    expect(lines[1]).toMatch(/site\.yaml:5:\d+: \[0\]\.tasks\[1\]\.command\.run\.unless: \{\{…\}\} inside "…"/);
    expect(lines[2]).toMatch(/site\.yaml:8:\d+: \[0\]\.handlers\.h\.command\.run\.cmd: \{\{…\}\} inside '…'/);
  });
});
