/**
 * `infra explain` through the real CLI on test/fixtures/cli/explain, where `greeting` is set in
 * group all (inline and file), a parent group, a child group, the host (inline and file).
 */
import { describe, it, expect } from 'vitest';
import { infra, FIXTURES } from './run-cli.js';

const INV = `${FIXTURES}/explain`;

/** Level rows as [label, value, (file:line:col)?] and the effective value. */
async function explain(args: string[]) {
  const r = await infra(['explain', ...args]);
  const rows = r.stdout.trimEnd().split('\n');
  const cells = rows.slice(1).map((l) => l.trim().split(/\s{2,}/));
  // The result is either its own "effective" row or the winning level marked "<- effective".
  const own = cells.find((c) => c[0] === 'effective');
  const marked = cells.find((c) => c[c.length - 1] === '<- effective');
  return {
    code: r.code,
    stderr: r.stderr,
    header: rows[0],
    levels: cells.filter((c) => c !== own).map((c) => c.filter((x) => x !== '<- effective')),
    effective: own ? own[1] : marked?.[1],
  };
}

describe('infra explain', () => {
  it('shows every level, lowest first, each with file:line:col, and the winner', async () => {
    const r = await explain(['greeting', '--host', 'web1', '-i', INV, '-e', 'greeting=from-extra']);
    expect(r.code).toBe(0);
    expect(r.header).toMatch(/^greeting for web1 \(lowest precedence first/);
    expect(r.levels).toEqual([
      ['group all', '"from-all-inline"', `(${INV}/hosts.yaml:12:7)`],
      ['group all', '"from-all-file"', `(${INV}/group_vars/all.yaml:1:1)`],
      ['group frontend', '"from-frontend"', `(${INV}/group_vars/frontend.yaml:1:1)`],
      ['group web', '"from-web"', `(${INV}/group_vars/web.yaml:2:1)`],
      ['host', '"from-host-inline"', `(${INV}/hosts.yaml:7:7)`],
      ['host', '"from-host-file"', `(${INV}/host_vars/web1.yaml:1:1)`],
      ['extra', '"from-extra"', '(-e (command line))'],
    ]);
    expect(r.effective).toBe('"from-extra"');
  });

  it('without -e the host file wins', async () => {
    const r = await explain(['greeting', '--host', 'web1', '-i', INV]);
    expect(r.code).toBe(0);
    expect(r.levels.map((l) => l[0])).toEqual(['group all', 'group all', 'group frontend', 'group web', 'host', 'host']);
    expect(r.effective).toBe('"from-host-file"');
  });

  it("--role adds the role default (the hardening role's ssh_port), overridden by -e", async () => {
    const r = await explain(['ssh_port', '--host', 'web1', '-i', INV, '--role', 'hardening', '-e', '{"ssh_port": 2222}']);
    expect(r.code).toBe(0);
    expect(r.levels).toEqual([['role default', '22'], ['extra', '2222', '(-e (command line))']]);
    expect(r.effective).toBe('2222');
  });

  it('-e @file names the file and line the value comes from', async () => {
    const r = await explain(['greeting', '--host', 'web1', '-i', INV, '-e', `@${INV}/extra.yaml`, '-e', 'other=1']);
    expect(r.code).toBe(0);
    expect(r.levels.at(-1)).toEqual(['extra', '"from-extra-file"', `(${INV}/extra.yaml:2:1)`]);
    expect(r.effective).toBe('"from-extra-file"');
  });

  it('--playbook: only the plays that run on the host count, each with its own result', async () => {
    const web = await explain(['greeting', '--host', 'web1', '-i', INV, '--playbook', `${INV}/site.yaml`]);
    expect(web.code).toBe(0);
    // The "databases" play sets greeting first, but does not run on web1.
    expect(web.levels.filter((l) => l[0].startsWith('play'))).toEqual([['play "web servers"', '"from-web-play"', `(${INV}/site.yaml:10:5)`]]);
    expect(web.levels.slice(-2)).toEqual([
      ['effective in play "web servers"', '"from-web-play"'],
      ['effective in play "everyone"', '"from-host-file"'],
    ]);
    // -e wins in every play: one result.
    const extra = await explain(['greeting', '--host', 'web1', '-i', INV, '--playbook', `${INV}/site.yaml`, '-e', 'greeting=x']);
    expect(extra.effective).toBe('"x"');
  });

  it('an unknown host exits 2 with a suggestion', async () => {
    const r = await explain(['greeting', '--host', 'web9', '-i', INV]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown host "web9"/);
    expect(r.stderr).toMatch(/did you mean "web1"\?/);
  });
});
