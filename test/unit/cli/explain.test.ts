/**
 * `infra explain` through the real CLI on test/fixtures/cli/explain, where `greeting` is set in
 * group all (inline and file), a parent group, a child group, the host (inline and file).
 */
import { describe, it, expect } from 'vitest';
import { infra, FIXTURES } from './run-cli.js';

const INV = `${FIXTURES}/explain`;

describe('infra explain', () => {
  it('shows every level, lowest first, each with file:line, and marks the winner', async () => {
    const r = await infra(['explain', 'greeting', '--host', 'web1', '-i', INV, '-e', 'greeting=from-extra']);
    expect(r.code).toBe(0);
    const rows = r.stdout.trimEnd().split('\n');
    expect(rows[0]).toBe('greeting for web1 (lowest precedence first; the last one wins):');
    const levels = rows.slice(1).map((l) => l.trim().split(/\s{2,}/));
    expect(levels).toEqual([
      ['group all', '"from-all-inline"', `(${INV}/hosts.yaml:12:7)`],
      ['group all', '"from-all-file"', `(${INV}/group_vars/all.yaml:1:1)`],
      ['group frontend', '"from-frontend"', `(${INV}/group_vars/frontend.yaml:1:1)`],
      ['group web', '"from-web"', `(${INV}/group_vars/web.yaml:2:1)`],
      ['host', '"from-host-inline"', `(${INV}/hosts.yaml:7:7)`],
      ['host', '"from-host-file"', `(${INV}/host_vars/web1.yaml:1:1)`],
      ['extra', '"from-extra"  <- effective'],
    ]);
  });

  it('without -e the host file wins', async () => {
    const r = await infra(['explain', 'greeting', '--host', 'web1', '-i', INV]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/"from-host-file"\s+\(.*host_vars\/web1\.yaml:1:1\)\s+<- effective\n$/);
  });

  it("--role adds the role default (the hardening role's ssh_port)", async () => {
    const r = await infra(['explain', 'ssh_port', '--host', 'web1', '-i', INV, '--role', 'hardening']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/role default\s+22\s+<- effective/);
  });

  it('an unknown host exits 2 with a suggestion', async () => {
    const r = await infra(['explain', 'greeting', '--host', 'web9', '-i', INV]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown host "web9"/);
    expect(r.stderr).toMatch(/did you mean "web1"\?/);
  });
});
