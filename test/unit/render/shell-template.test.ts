/**
 * Shell fields (issue 10 item 10): each {{…}} is inserted as one quoted word. The rendered
 * commands are run by the local /bin/sh to prove it: whatever the value holds, the command
 * prints it back unchanged and runs nothing else.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRenderer, shellTemplateProblem } from '../../../src/render/template.js';
import { UserError } from '../../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'infra-shell-tmpl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const renderer = createRenderer({ sharedDir: '/nonexistent' });
const shell = (template: string, vars: Record<string, unknown>) => renderer.renderString(template, { vars, host: { name: 'web1' } }, 'site.yaml:7', { shell: true });
const sh = (cmd: string) => execFileSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', cwd: dir });

const pwned = join(dir, 'pwned');
const HOSTILE = [
  `x'; touch ${pwned}; echo '`,
  `$(touch ${pwned})`,
  `\`touch ${pwned}\``,
  `a"b\\c$HOME`,
  `; touch ${pwned} #`,
  `line1\ntouch ${pwned}`,
  `* ?[a] ~root`,
  '',
  '-n',
];

describe('shell fields quote every {{…}}', () => {
  it.each(HOSTILE.map((v) => [JSON.stringify(v), v]))('%s prints back unchanged and runs nothing', (_name, value) => {
    const cmd = shell("printf '[%s]\\n' {{vars.v}}", { v: value });
    expect(sh(cmd)).toBe(`[${value}]\n`);
    expect(existsSync(pwned)).toBe(false);
  });

  it('each item of a loop is its own word; literal text around it stays shell syntax', () => {
    const cmd = shell("{{#each vars.files}}printf '[%s]' {{this}}; {{/each}}echo", { files: ['a b', "c'd", '$(id)'] });
    expect(sh(cmd)).toBe("[a b][c'd][$(id)]\n");
  });

  it('{{#if}} and helpers: the printed value is one word', () => {
    expect(shell('run{{#if vars.force}} --force{{/if}} {{join vars.list " "}}', { force: true, list: ['a', 'b'] })).toBe("run --force 'a b'");
  });

  it('{{quote …}} is not quoted twice; {{raw …}} splices on purpose', () => {
    expect(shell('echo {{quote vars.v}}', { v: "it's" })).toBe(`echo 'it'\\''s'`);
    expect(sh(shell('{{raw vars.snippet}}', { snippet: 'echo spliced | tr a-z A-Z' }))).toBe('SPLICED\n');
  });

  it('numbers and plain words are left readable', () => {
    expect(shell('systemctl restart {{vars.unit}} && sleep {{vars.n}}', { unit: 'nginx.service', n: 2 })).toBe('systemctl restart nginx.service && sleep 2');
  });

  it('outside shell fields nothing is quoted', () => {
    expect(renderer.renderString('password={{vars.v}}', { vars: { v: "it's" } }, 'o')).toBe("password=it's");
    expect(renderer.renderString('{{raw vars.v}}', { vars: { v: 'x y' } }, 'o')).toBe('x y');
  });

  it('a missing variable is still named, with the task origin', () => {
    let err: unknown;
    try {
      shell('echo {{vars.nope}}', {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).format()).toContain('site.yaml:7: template "echo {{vars.nope}}": missing variable "vars.nope"');
  });
});

describe('a {{…}} where a quoted word is not safe is refused', () => {
  it.each([
    ["echo '{{vars.v}}'", /inside '…'/],
    ['echo "{{vars.v}}"', /inside "…"/],
    ['echo "pre {{vars.v}} post"', /inside "…"/],
    ['echo x\\\\{{vars.v}}', /after a backslash/],
    ['true # {{vars.v}}', /shell comment/],
    ['cat > /x <<EOF\n{{vars.v}}\nEOF', /here-document/],
    ["{{#if vars.v}}'{{/if}}x'", /must be closed inside it/],
    ['{{> managed}}', /partials/],
  ])('%j', (template, problem) => {
    expect(shellTemplateProblem(template)?.message).toMatch(problem);
    expect(() => shell(template, { v: 'x' })).toThrow(problem);
  });

  it.each([["echo 'it''s' {{vars.v}}"], ['echo "a" {{vars.v}} "b"'], ['echo \\" {{vars.v}}'], ['echo a#b {{vars.v}}'], ['true # comment\necho {{vars.v}}'], ['echo "{{raw vars.v}}"']])(
    'but not %j',
    (template) => {
      expect(shellTemplateProblem(template)).toBeUndefined();
    },
  );
});
