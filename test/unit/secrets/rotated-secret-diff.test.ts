/**
 * Issue 10 item 5: after a password rotation, `--diff` printed the OLD password in the removed
 * line. The old value is no longer a Secret (the vault holds only the new one), so the
 * redactor cannot know it: a file whose rendering revealed a Secret is sensitive as a whole,
 * before and after, and its diff shows no content.
 */
import { describe, expect, it } from 'vitest';
import { files } from '../../../src/modules/index.js';
import { createRenderer } from '../../../src/render/template.js';
import { createReporter } from '../../../src/report/index.js';
import type { Check, Diff } from '../../../src/modules/types.js';
import { Secret, containsSecret } from '../../../src/secrets/secret.js';
import { fakeHost, fileProbe } from '../modules/fake-host.js';
import { sink } from '../report/events.fixture.js';

const tag = Math.random().toString(36).slice(2, 10);
const OLD = `OldPassw0rd-rotated-${tag}`;
const NEW = new Secret(`NewPassw0rd-${tag}`);
const renderer = createRenderer({ sharedDir: '/nonexistent' });
const data = { vars: { pw: NEW, user: 'app' } };
const TEMPLATE = 'user={{vars.user}}\npassword={{vars.pw}}\n';

/** A host whose file still holds the old password, rendering templates with the real renderer. */
function hostWithOldFile() {
  const host = fakeHost([{ stdout: fileProbe({ content: `user=app\npassword=${OLD}\n`, mode: '600' }) }], { checkMode: true });
  host.render = async () => renderer.renderString(TEMPLATE, data, 'secret.conf.hbs');
  return host;
}

const parse = <P>(f: { module: { params: { parse(v: unknown): P } } }, v: unknown): P => f.module.params.parse(v);

async function shown(c: Check): Promise<string> {
  let text = '';
  for (const mode of ['plain', 'json'] as const) {
    const out = sink();
    const r = createReporter({ mode, diff: true, out: out.stream });
    r.emit({ type: 'task.result', host: 'db1', task: 'files.template /etc/app.conf', module: 'files.template', status: 'changed', changes: c.changes, diff: c.diff, ms: 1 });
    await r.close();
    text += out.text();
  }
  return text;
}

describe('a file whose content reveals a Secret is sensitive as a whole', () => {
  it('containsSecret: any registered form of any secret', () => {
    expect(containsSecret(`password=${NEW.reveal()}\n`)).toBe(true);
    expect(containsSecret(`password='${NEW.reveal()}'\n`)).toBe(true);
    expect(containsSecret(`password=${OLD}\n`)).toBe(false);
    expect(containsSecret(Buffer.from(`x ${NEW.reveal().toUpperCase()} y`))).toBe(true);
  });

  const cases: Array<[string, () => Promise<Check>]> = [
    ['files.template', () => files.template.module.check(hostWithOldFile(), parse(files.template, { src: 'secret.conf.hbs', dest: '/etc/app.conf' }))],
    ['files.file template:', () => files.file.module.check(hostWithOldFile(), parse(files.file, { template: 'secret.conf.hbs', path: '/etc/app.conf' }))],
    [
      'files.file content: (a YAML param templated with the secret)',
      () => files.file.module.check(hostWithOldFile(), parse(files.file, { content: renderer.renderString(TEMPLATE, data, 'site.yaml:3'), path: '/etc/app.conf' })),
    ],
    [
      'files.line (a YAML param templated with the secret)',
      () =>
        files.line.module.check(
          hostWithOldFile(),
          parse(files.line, { path: '/etc/app.conf', regexp: '^password=', line: renderer.renderString('password={{vars.pw}}', data, 'site.yaml:4') }),
        ),
    ],
  ];
  for (const [name, check] of cases) {
    it(`${name}: the rotated-out password shows nowhere, neither does the new one`, async () => {
      const c = await check();
      expect(c.changes.length).toBeGreaterThan(0);
      const diff = c.diff?.[0] as Extract<Diff, { kind: 'file' }>;
      expect(diff.sensitive).toBe(true);
      const text = await shown(c);
      expect(text).not.toContain(tag);
      expect(text).toContain('content hidden: sensitive');
      expect(text).toMatch(/content: sha256 [0-9a-f]{12} → sha256 [0-9a-f]{12}/);
    });
  }

  it('a template that reveals no secret keeps its diff', async () => {
    const host = fakeHost([{ stdout: fileProbe({ content: 'user=old\n' }) }], { checkMode: true });
    host.render = async () => renderer.renderString('user={{vars.user}}\n', data, 'plain.hbs');
    const c = await files.template.module.check(host, parse(files.template, { src: 'plain.hbs', dest: '/etc/plain.conf' }));
    expect((c.diff?.[0] as { sensitive?: boolean }).sensitive).toBeFalsy();
    const text = await shown(c);
    expect(text).toContain('-user=old');
    expect(text).toContain('+user=app');
  });
});
