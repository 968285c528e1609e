/**
 * `infra check` through the real CLI: the shipped inventories pass, and bad input exits 2
 * with file:line:col and a hint, before any connection.
 */
import { describe, it, expect } from 'vitest';
import { infra, FIXTURES, REPO } from './run-cli.js';

describe('infra check', () => {
  it.each(['prod', 'lab'])('check -i %s passes with no network', async (env) => {
    const r = await infra(['check', '-i', env]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^ok: 11 hosts in ${env}, \\d+ plays over 11 hosts, \\d+ roles, \\d+ templates\\n$`));
  });

  it("builds every role's tasks: an unknown group in a firewall opening fails check, not the run", async () => {
    const { cp, mkdtemp, readFile, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(`${tmpdir()}/infra-check-`);
    await cp(`${FIXTURES}/../../../inventories/lab`, dir, { recursive: true });
    const api = `${dir}/group_vars/api.yaml`;
    await writeFile(api, (await readFile(api, 'utf8')).replace('from: [lb], comment: nginx', 'from: [lbb], comment: nginx'));
    const r = await infra(['check', '-i', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/play "baseline": host pattern "lbb": no host or group named "lbb" .*\(hosts api1, api2\)/);
  });

  it('a valid playbook on the fixture inventory passes (the template next to it is compiled)', async () => {
    const r = await infra(['check', `${FIXTURES}/playbooks/ok.yaml`, '-i', `${FIXTURES}/explain`]);
    expect([r.code, r.stdout]).toEqual([0, `ok: 1 hosts in ${FIXTURES}/explain, 1 plays over 1 hosts, 0 roles, 1 templates\n`]);
  });
});

describe('bad inventories exit 2 with file:line:col and a hint', () => {
  const file = (dir: string) => `${FIXTURES}/${dir}/hosts.yaml`;
  it.each([
    ['bad-unknown-key', 4, 5, /hosts\.web1: unknown key "adress" — did you mean "address"\?/, /hint: allowed here: address, groups, vars/],
    // Known gap: a wrong type carries no hint (test/unit/inventory/load.test.ts pins that).
    ['bad-wrong-type', 5, 11, /hosts\.web1\.port: expected number, got string "twenty-two"/, null],
    ['bad-malformed-yaml', 6, 1, /invalid YAML: Flow sequence/, /hint: check the indentation and quoting/],
    ['bad-duplicate-key', 6, 3, /invalid YAML: Map keys must be unique/, /hint: each key may appear once in a mapping/],
    ['bad-unknown-group', 5, 14, /unknown group "wbe" — did you mean "web"\?/, /hint: declare it under groups: in hosts\.yaml/],
  ])('%s', async (dir, line, col, message, hint) => {
    const r = await infra(['check', '-i', `${FIXTURES}/${dir}`]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.startsWith(`error: ${file(dir)}:${line}:${col}: `)).toBe(true);
    expect(r.stderr).toMatch(message);
    if (hint) expect(r.stderr).toMatch(hint);
  });

  it('an unknown inventory suggests the closest one', async () => {
    const r = await infra(['check', '-i', 'prdo']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no inventory "prdo"/);
    expect(r.stderr).toMatch(/hint: did you mean "prod"\?/);
  });
});

describe('bad playbooks exit 2 with file:line:col', () => {
  const pb = (name: string) => `${FIXTURES}/playbooks/${name}.yaml`;
  const check = (name: string) => infra(['check', pb(name), '-i', `${FIXTURES}/explain`]);

  it('an unknown module, with did-you-mean and the list of modules', async () => {
    const r = await check('unknown-module');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${pb('unknown-module')}:5:7: [0].tasks[0]: unknown module "files.lien" — did you mean "files.line"?`);
    expect(r.stderr).toMatch(/hint: modules: .*files\.line.*systemd\.service/);
  });

  it('bad module parameters: every error, each at its own position', async () => {
    const r = await check('bad-params');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${pb('bad-params')}:5:27: [0].tasks[0].files.line.path: must be an absolute path`);
    expect(r.stderr).toContain(`${pb('bad-params')}:5:63: [0].tasks[0].files.line: unknown key "colour"`);
    expect(r.stderr).toMatch(/hint: allowed here: path, line, /);
  });

  it('a hosts pattern that names nothing points at the play', async () => {
    const r = await check('unknown-hosts');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${pb('unknown-hosts')}:3:10: host pattern "webb": no host or group named "webb" — did you mean "web1"?`);
  });

  it("a role variable outside the role's schema", async () => {
    const r = await check('bad-role-var');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/role hardening: variable ssh_port: .*65535, got number 70000/);
  });
});

/**
 * Issue 10 item 29: templates are rendered before connecting (check, and apply/plan too), with
 * placeholder facts, so a missing variable, a missing template or a path with ".." exits 2
 * with the template's (or the task's) file:line and the variable's name. Items 10 and 27: a
 * shell field with quotes around {{…}}, and a handler's missing variable, are found too.
 */
describe('templates are rendered before connecting', () => {
  const cwd = `${REPO}/${FIXTURES}`;
  const pb = (name: string) => `playbooks/${name}.yaml`;
  const run = (cmd: 'check' | 'plan', name: string) => infra([cmd, pb(name), '-i', './explain'], { cwd });

  it('role templates that read facts and other hosts pass with placeholder facts', async () => {
    const r = await run('check', 'role-templates');
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/^ok: 1 hosts in \.\/explain, 1 plays over 1 hosts, 1 roles, 3 templates\n$/);
  });

  for (const cmd of ['check', 'plan'] as const) {
    describe(cmd, () => {
      it('a role template with a missing variable: the template file:line:col and the variable', async () => {
        const r = await run(cmd, 'role-template-missing-var');
        expect(r.code, r.stderr + r.stdout).toBe(2);
        expect(r.stderr).toContain(`error: ${cwd}/roles/tmplcheck/templates/bad.conf.hbs:3:12: template: missing variable "vars.db_password" (host web1, role tmplcheck)`);
        expect(r.stdout).toBe('');
      });

      it('a role template that does not exist: the line of role.ts that names it', async () => {
        const r = await run(cmd, 'role-template-missing-file');
        expect(r.code, r.stderr + r.stdout).toBe(2);
        expect(r.stderr).toMatch(new RegExp(`^error: ${cwd}/roles/tmplcheck/role\\.ts:17: files\\.template /etc/tmplcheck/nowhere\\.conf: template not found: .*nowhere\\.conf\\.hbs \\(host web1, role tmplcheck\\)`));
      });

      it('a template next to the playbook with a missing variable', async () => {
        const r = await run(cmd, 'template-missing-var');
        expect(r.code, r.stderr + r.stdout).toBe(2);
        expect(r.stderr).toContain(`error: ${cwd}/playbooks/templates/greeting.conf.hbs:2:14: template: missing variable "vars.farewell" (host web1)`);
      });

      it('a template that does not exist, and one whose path has "..": the task line', async () => {
        const missing = await run(cmd, 'template-not-found');
        expect(missing.code, missing.stderr + missing.stdout).toBe(2);
        expect(missing.stderr).toMatch(new RegExp(`^error: playbooks/template-not-found\\.yaml:5:7: files\\.template /etc/nope\\.conf: template not found`));
        const dotdot = await run(cmd, 'template-dotdot');
        expect(dotdot.code, dotdot.stderr + dotdot.stdout).toBe(2);
        expect(dotdot.stderr).toMatch(new RegExp(`^error: playbooks/template-dotdot\\.yaml:5:7: files\\.file /etc/escape\\.conf: path "\\.\\./ok\\.yaml" must not contain "\\.\\."`));
      });

      it("a handler's missing variable (item 27)", async () => {
        const r = await run(cmd, 'handler-missing-var');
        expect(r.code, r.stderr + r.stdout).toBe(2);
        expect(r.stderr).toMatch(new RegExp(`^error: playbooks/handler-missing-var\\.yaml:9:7: template "touch \\{\\{ vars\\.marker \\}\\}": missing variable "vars\\.marker"`));
      });

      it('quotes around {{…}} in a shell field (item 10)', async () => {
        const r = await run(cmd, 'shell-quoted');
        expect(r.code, r.stderr + r.stdout).toBe(2);
        expect(r.stderr).toContain(`error: playbooks/shell-quoted.yaml:5:27: [0].tasks[0].command.run.cmd: {{…}} inside '…': in a shell field its value is already quoted`);
      });
    });
  }
});
