/**
 * `infra check` through the real CLI: the shipped inventories pass, and bad input exits 2
 * with file:line:col and a hint, before any connection.
 */
import { describe, it, expect } from 'vitest';
import { infra, FIXTURES } from './run-cli.js';

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
    expect(r.stderr).toMatch(/api1, play "baseline": host pattern "lbb": no host or group named "lbb"/);
  });

  it('a valid playbook on the fixture inventory passes', async () => {
    const r = await infra(['check', `${FIXTURES}/playbooks/ok.yaml`, '-i', `${FIXTURES}/explain`]);
    expect([r.code, r.stdout]).toEqual([0, `ok: 1 hosts in ${FIXTURES}/explain, 1 plays over 1 hosts, 0 roles, 0 templates\n`]);
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
