/**
 * A secret is masked in every form a template helper or the shell quoting can turn it into,
 * not only as its exact value: `{{quote vars.password}}` for O'Brien-Pass-9 renders
 * 'O'\''Brien-Pass-9', which no longer contains the value. Each form goes end to end through
 * the three reporters (task label, error, diff, JSON events).
 */
import { describe, expect, it } from 'vitest';
import { createReporter } from '../../../src/report/index.js';
import type { RunEvent } from '../../../src/report/events.js';
import { createRenderer } from '../../../src/render/template.js';
import { MASK, Secret, redact } from '../../../src/secrets/secret.js';
import { sink } from '../report/events.fixture.js';

const tag = Math.random().toString(36).slice(2, 10);
/** Each value ends with a random tag that no masked output may keep, in any letter case. */
const PASSWORDS = {
  apostrophe: new Secret(`O'Brien-Pass-9-${tag}`),
  quotes: new Secret(`say "cheese"\\now-${tag}`),
  dollar: new Secret(`$(id)-Dollar'pw-${tag}`),
};

const renderer = createRenderer({ sharedDir: '/nonexistent' });

/** Every helper that transforms a string, applied to a secret: what a template can print. */
const FORMS: Array<[string, string]> = [
  ['quote', 'mysql -p{{quote vars.pw}} -e status'],
  ['json', 'curl -d {{json vars.pw}} https://x'],
  ['upper', 'TOKEN={{upper vars.pw}}'],
  ['lower', 'token={{lower vars.pw}}'],
  ['json of an object', '{{json vars.conf}}'],
  ['quote inside json', '{{json (quote vars.pw)}}'],
  ['join', '{{join vars.list " "}}'],
];

async function through(mode: 'plain' | 'tty' | 'json', text: string): Promise<string> {
  const out = sink({ tty: mode === 'tty' });
  const r = createReporter({ mode, diff: true, verbose: true, out: out.stream });
  const events: RunEvent[] = [
    { type: 'run.start', runId: 'r', command: 'apply', mode: 'apply', inventory: 'lab', hosts: ['db1'], at: '' },
    { type: 'task.start', host: 'db1', task: `command.run ${text}`, module: 'command.run' },
    {
      type: 'task.result',
      host: 'db1',
      task: `command.run ${text}`,
      module: 'command.run',
      status: 'failed',
      changes: [{ what: 'run', to: text }],
      error: `command "${text}" failed: exit 1\nstderr: ${text}`,
      ms: 1,
    },
    {
      type: 'task.result',
      host: 'db1',
      task: `files.file /etc/x`,
      module: 'files.file',
      status: 'changed',
      changes: [{ what: 'run', from: text, to: text }],
      diff: [{ kind: 'file', path: '/etc/x', before: `a\n${text}\nb\n`, after: 'a\nb\n' }],
      ms: 1,
    },
    { type: 'exec.output', host: 'db1', code: 1, stdout: `${text}\n`, stderr: text },
    { type: 'run.end', runId: 'r', recap: [], durationMs: 1, interrupted: false, exitCode: 1 },
  ];
  for (const e of events) r.emit(e);
  await r.close();
  return out.text();
}

describe('every form of a secret is masked', () => {
  for (const [name, secret] of Object.entries(PASSWORDS)) {
    for (const [form, template] of FORMS) {
      it(`${name}: {{${form}}} in a label, an error, a diff and exec output`, async () => {
        const data = { vars: { pw: secret, conf: { user: 'app', password: secret }, list: ['a', secret] } };
        const rendered = renderer.renderString(template, data, 'test');
        expect(rendered.toLowerCase()).toContain(tag); // the value did get in
        expect(redact(rendered)).toContain(MASK);
        for (const mode of ['plain', 'tty', 'json'] as const) {
          const out = await through(mode, rendered);
          expect(out.toLowerCase(), `${mode} output`).not.toContain(tag);
          expect(out, `${mode} output`).toContain(MASK);
        }
      });
    }
  }

  it('the shell-quoted form is registered when the Secret is created, before any rendering', () => {
    const s = new Secret(`it's-${tag}-late`);
    expect(redact(`run '${s.reveal().replace(/'/g, `'\\''`)}' now`)).toBe(`run ${MASK} now`);
  });
});
