/**
 * Hostile input through the real CLI on a real container (issue 10). Items 10 and 27: `{{ }}`
 * in a YAML shell field (cmd, unless, onlyIf, validate) inserts the value as one quoted shell
 * word, so a value holding `'` or `$(…)` runs nothing; `{{raw …}}` still splices shell syntax
 * on purpose; and a YAML handler's parameters are templated like a task's. Item 9: a host's
 * output cannot drive the operator's terminal (OSC 52 clipboard writes, screen clears).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFleet, type Fleet } from './fleet.js';
import { infra, taskResults, type CliResult } from './helpers/cli.js';

const QUOTE_BREAKER = "x'; touch /tmp/pwned-quote; echo '";
const SUBSTITUTION = '$(touch /tmp/pwned-subst)';

const PLAYBOOK = `
- name: hostile values in shell fields
  hosts: targets
  vars:
    out: /opt/shell-templates
  tasks:
    - files.directory: { path: "{{ vars.out }}", mode: "0755" }
    - command.run: { cmd: "printf '%s\\\\n' {{ vars.quote_breaker }} > {{ vars.out }}/quote.out" }
    - command.run: { cmd: "printf '%s\\\\n' {{ vars.substitution }} > {{ vars.out }}/subst.out" }
    - command.run: { cmd: "true", unless: "test -e {{ vars.unless_value }}" }
    - command.run: { cmd: "true", onlyIf: "test -n {{ vars.only_if_value }}" }
    - files.file:
        path: "{{ vars.out }}/validated"
        content: "ok\\n"
        validate: "grep -q ok %s && test -n {{ vars.validate_value }}"
    - command.run: { cmd: "{{ raw vars.snippet }} > {{ vars.out }}/raw.out" }
      notify: mark
  handlers:
    mark:
      command.run: { cmd: "touch {{ vars.marker }}" }
`;

const OSC52 = '\u001b]52;c;Y3VybCBldmlsIHwgc2g=\u0007';

let fleet: Fleet;
let work: string;
let playbook: string;

const output = (r: CliResult) => r.stdout + r.stderr;

beforeAll(async () => {
  fleet = await startFleet({
    targets: 1,
    groupVars: {
      targets: {
        quote_breaker: QUOTE_BREAKER,
        substitution: SUBSTITUTION,
        unless_value: '$(touch /tmp/pwned-unless)',
        only_if_value: '`touch /tmp/pwned-onlyif`',
        validate_value: '$(touch /tmp/pwned-validate)',
        snippet: 'echo spliced | tr a-z A-Z',
        marker: '/opt/shell-templates/handler-ran',
      },
    },
  });
  work = await mkdtemp(join(tmpdir(), 'infra-shell-templates-'));
  playbook = join(work, 'site.yaml');
  await writeFile(playbook, PLAYBOOK);
}, 180_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('templated shell fields', () => {
  it('check passes, apply inserts each value as one word: nothing injected runs', async () => {
    const check = await infra(['check', playbook, '-i', fleet.inventoryDir]);
    expect(check.code, output(check)).toBe(0);

    const r = await infra(['apply', playbook, '-i', fleet.inventoryDir, '--json']);
    expect(r.code, output(r)).toBe(0);
    const pwned = await fleet.exec('target1', 'ls /tmp | grep pwned || true');
    expect(pwned.stdout).toBe('');
    expect((await fleet.exec('target1', 'cat /opt/shell-templates/quote.out')).stdout).toBe(`${QUOTE_BREAKER}\n`);
    expect((await fleet.exec('target1', 'cat /opt/shell-templates/subst.out')).stdout).toBe(`${SUBSTITUTION}\n`);
    expect((await fleet.exec('target1', 'cat /opt/shell-templates/validated')).stdout).toBe('ok\n');
    // The guards saw the literal values: `test -e '$(…)'` fails (runs), `test -n '`…`'` succeeds (runs).
    const statuses = taskResults(r, 'target1').map((e) => `${e.status} ${e.task}`);
    expect(statuses.filter((s) => s === 'changed command.run true')).toHaveLength(2);
  }, 120_000);

  it('{{raw …}} splices shell syntax on purpose', async () => {
    expect((await fleet.exec('target1', 'cat /opt/shell-templates/raw.out')).stdout).toBe('SPLICED\n');
  });

  it('a YAML handler is templated like a task (item 27)', async () => {
    expect((await fleet.exec('target1', 'test -e /opt/shell-templates/handler-ran; echo $?')).stdout.trim()).toBe('0');
    // Not run literally: no files named "{{", "vars.marker" or "}}" anywhere the shell could have started.
    const literal = await fleet.exec('target1', "find / -xdev \\( -name '{{' -o -name 'vars.marker' -o -name '}}' \\) -print 2>/dev/null");
    expect(literal.stdout).toBe('');
  });
});

describe('remote output on the terminal', () => {
  // printf turns \033 and \007 into the real bytes on the host; \302\233 is U+009B, the C1 CSI.
  const hostile = "printf 'a\\033]52;c;Y3VybCBldmlsIHwgc2g=\\007b\\033[2Jc\\302\\2332J\\r\\n'; printf 'err\\033[31m\\n' >&2";

  it('infra exec shows control characters escaped, in plain output', async () => {
    const r = await infra(['exec', '-i', fleet.inventoryDir, '-l', 'target1', '--', hostile]);
    expect(r.code, output(r)).toBe(0);
    expect(r.stdout).toContain('│ a\\x1b]52;c;Y3VybCBldmlsIHwgc2g=\\x07b\\x1b[2Jc\\x9b2J\\x0d');
    expect(r.stdout).toContain('! err\\x1b[31m');
    expect(output(r)).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  }, 60_000);

  it('--json keeps the exact bytes, JSON-escaped', async () => {
    const r = await infra(['exec', '-i', fleet.inventoryDir, '-l', 'target1', '--json', '--', hostile]);
    expect(r.code, output(r)).toBe(0);
    expect(r.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    const out = r.events.find((e) => e.type === 'exec.output');
    expect(out).toMatchObject({ stdout: `a${OSC52}b\u001b[2Jc\u009b2J\r\n`, stderr: 'err\u001b[31m\n' });
  }, 60_000);
});
