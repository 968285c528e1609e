import { describe, expect, it } from 'vitest';
import { renderChanges, renderDiff } from '../../../src/render/diff.js';
import { stripAnsi } from '../../../src/render/ansi.js';
import { MASK, Secret } from '../../../src/secrets/secret.js';
import { createRenderer } from '../../../src/render/template.js';

const lines = (n: number, prefix = 'line') => Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}`).join('\n') + '\n';

describe('renderDiff: files', () => {
  it('is a unified diff with 3 lines of context and before/after headers', () => {
    const before = lines(10);
    const after = before.replace('line 5\n', 'line five\n');
    expect(renderDiff({ kind: 'file', path: '/etc/app.conf', before, after }, { color: false })).toBe(
      [
        '--- /etc/app.conf (before)',
        '+++ /etc/app.conf (after)',
        '@@ -2,7 +2,7 @@',
        ' line 2',
        ' line 3',
        ' line 4',
        '-line 5',
        '+line five',
        ' line 6',
        ' line 7',
        ' line 8',
      ].join('\n'),
    );
  });

  it('shows a new file as all added lines', () => {
    const out = renderDiff({ kind: 'file', path: '/etc/new', before: null, after: 'a\nb\n' }, { color: false });
    expect(out.split('\n').slice(2)).toEqual(['@@ -0,0 +1,2 @@', '+a', '+b']);
  });

  it('colors with ANSI codes only when asked', () => {
    const d = { kind: 'file' as const, path: '/x', before: 'a\n', after: 'b\n' };
    const colored = renderDiff(d, { color: true });
    expect(colored).toContain('\u001b[31m-a\u001b[39m');
    expect(colored).toContain('\u001b[32m+b\u001b[39m');
    expect(renderDiff(d, { color: false })).not.toContain('\u001b[');
    expect(stripAnsi(colored)).toBe(renderDiff(d, { color: false }));
  });

  it('hides sensitive content entirely, old and new (the change line carries the sha256)', () => {
    const out = renderDiff({ kind: 'file', path: '/etc/key', before: 'a\nb\n', after: 'c\nd\ne\n', sensitive: true }, { color: false });
    expect(out).toBe('--- /etc/key (before)\n+++ /etc/key (after)\n(content hidden: sensitive)');
    expect(renderDiff({ kind: 'file', path: '/k', before: null, after: 'x\n', sensitive: true }, { color: false })).toContain('(content hidden: sensitive; new file)');
    expect(renderDiff({ kind: 'file', path: '/k', before: 'x\n', after: null, sensitive: true }, { color: false })).toContain('(content hidden: sensitive; removed)');
  });

  it('masks a registered secret on the changed lines, even when the secret spans lines', async () => {
    const password = new Secret('pw-diff-Zq81x');
    const tlsKey = new Secret('-----BEGIN KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQEF\n-----END KEY-----');
    // The content is rendered through the real renderer, so the host would get the real value...
    const renderer = createRenderer({ sharedDir: '/nonexistent' });
    const after = renderer.renderString('user=app\npassword={{pw}}\nkey:\n{{key}}\n', { pw: password, key: tlsKey }, 't');
    expect(after).toContain('pw-diff-Zq81x');
    expect(after).toContain('MIIEvQIBADANBg');
    // ...and the diff never shows it.
    const out = renderDiff({ kind: 'file', path: '/etc/app.env', before: 'user=app\npassword=old\n', after }, { color: true });
    expect(out).not.toContain('pw-diff-Zq81x');
    expect(out).not.toContain('MIIEvQIBADANBg');
    expect(out).not.toContain('kqhkiG9w0BAQEF');
    expect(stripAnsi(out)).toContain(`+password=${MASK}`);
    expect(stripAnsi(out)).toContain('-password=old');
  });

  it('says when only masked values differ', () => {
    new Secret('old-secret-AAA');
    new Secret('new-secret-BBB');
    const out = renderDiff({ kind: 'file', path: '/f', before: 'p=old-secret-AAA\n', after: 'p=new-secret-BBB\n' }, { color: false });
    expect(out).toContain('(only masked secret values differ)');
    expect(out).not.toMatch(/secret-(AAA|BBB)/);
  });

  it('summarizes binary content', () => {
    expect(renderDiff({ kind: 'file', path: '/b', before: 'a\0b', after: null }, { color: false })).toContain('(binary content; 3 bytes → absent)');
  });
});

describe('renderDiff: packages, services, values', () => {
  it.each([
    [{ kind: 'package', name: 'nginx', before: null, after: '1.22.1-9' }, 'package nginx: (absent) → 1.22.1-9'],
    [{ kind: 'package', name: 'nginx', before: '1.22.0-1', after: '1.22.1-9' }, 'package nginx: 1.22.0-1 → 1.22.1-9'],
    [{ kind: 'package', name: 'telnet', before: '0.17', after: null }, 'package telnet: 0.17 → (absent)'],
    [{ kind: 'service', name: 'nginx', before: 'stopped', after: 'started' }, 'service nginx: stopped → started'],
    [{ kind: 'value', name: 'net.ipv4.ip_forward', before: '0', after: '1' }, 'net.ipv4.ip_forward: 0 → 1'],
    [{ kind: 'value', name: 'token', before: 'a', after: 'b', sensitive: true }, 'token: (content hidden: sensitive)'],
  ] as const)('%j', (d, expected) => {
    expect(renderDiff(d, { color: false })).toBe(expected);
  });

  it('redacts secrets in value diffs', () => {
    new Secret('val-secret-77');
    expect(renderDiff({ kind: 'value', name: 'x', before: null, after: 'val-secret-77' }, { color: false })).toBe(`x: (absent) → ${MASK}`);
  });

  it('renders multi-line values as a unified diff', () => {
    const out = renderDiff({ kind: 'value', name: 'acl', before: 'a\nb', after: 'a\nc' }, { color: false });
    expect(out).toContain('--- acl (before)');
    expect(out).toContain('+c');
  });
});

describe('renderChanges', () => {
  it('gives one line per change, redacted', () => {
    new Secret('chg-secret-9');
    expect(
      renderChanges([
        { what: 'mode', from: '0644', to: '0600' },
        { what: 'install nginx', to: '1.22.1-9' },
        { what: 'remove telnet', from: '0.17' },
        { what: 'content' },
        { what: 'password', from: 'chg-secret-9', to: 'x' },
      ]),
    ).toEqual(['mode: 0644 → 0600', 'install nginx → 1.22.1-9', 'remove telnet (was 0.17)', 'content', `password: ${MASK} → x`]);
  });
});
