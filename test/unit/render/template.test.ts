import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRenderer, resolveInside } from '../../../src/render/template.js';
import { UserError } from '../../../src/errors.js';
import { Secret } from '../../../src/secrets/secret.js';

let root: string;
let roleDir: string;
let sharedDir: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'infra-render-'));
  roleDir = join(root, 'roles', 'web');
  sharedDir = join(root, 'templates');
  mkdirSync(join(roleDir, 'templates', 'sub'), { recursive: true });
  mkdirSync(sharedDir);
  writeFileSync(join(sharedDir, 'managed.hbs'), '{{default comment "#"}} managed by infra\n');
  writeFileSync(join(sharedDir, 'shared-only.conf.hbs'), 'shared {{vars.x}}\n');
  writeFileSync(join(sharedDir, 'needs.hbs'), 'first\nneeds {{vars.p}}\n');
  const t = (name: string, body: string) => writeFileSync(join(roleDir, 'templates', name), body);
  t('ok.conf.hbs', '{{> managed comment=";"}}\nport = {{vars.port}}\n');
  t('missing.conf.hbs', 'a = 1\nb = {{vars.port}}\nc = {{vars.nope}}\n');
  t('html.hbs', '{{vars.s}}');
  t('syntax.hbs', 'line1\n{{#if vars.x}}\nno close\n');
  t('unknown-partial.hbs', '{{> nosuch}}\n');
  t('unknown-helper.hbs', '{{frobnicate vars.x}}\n');
  t('helper-undefined.hbs', 'x\n{{join vars.nope ","}}\n');
  t('secret.conf.hbs', 'password = {{vars.db.password}}\n');
  t('uses-needs.hbs', '{{> managed}}\n{{> needs}}\n');
  t('sub/nested.hbs', 'nested {{vars.port}}');
  writeFileSync(join(root, 'outside.hbs'), 'outside');
  symlinkSync(join(root, 'outside.hbs'), join(roleDir, 'templates', 'link-out.hbs'));
  symlinkSync(join(root), join(roleDir, 'templates', 'dir-out'));
  symlinkSync(join(roleDir, 'templates', 'ok.conf.hbs'), join(roleDir, 'templates', 'link-in.hbs'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const renderer = () => createRenderer({ sharedDir });

async function userError(p: Promise<unknown> | (() => unknown)): Promise<UserError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

describe('renderFile', () => {
  it('renders with shared partials and no HTML escaping', async () => {
    const r = renderer();
    expect(await r.renderFile(roleDir, 'ok.conf.hbs', { vars: { port: 5432 } })).toBe('; managed by infra\nport = 5432\n');
    expect(await r.renderFile(roleDir, 'html.hbs', { vars: { s: `<a href="x">&'` } })).toBe(`<a href="x">&'`);
  });

  it('a missing variable names the template file, line, column and variable', async () => {
    const e = await userError(renderer().renderFile(roleDir, 'missing.conf.hbs', { vars: { port: 1 } }));
    expect(e.message).toContain('missing variable "vars.nope"');
    expect(e.pos).toEqual({ file: join(roleDir, 'templates', 'missing.conf.hbs'), line: 3, col: 7 });
    expect(e.format()).toMatch(/missing\.conf\.hbs:3:7: template: missing variable "vars\.nope"/);
    expect(e.hint).toContain('default');
  });

  it('a missing variable inside a shared partial names the partial file', async () => {
    const r = renderer();
    expect(await r.renderFile(roleDir, 'uses-needs.hbs', { vars: { p: 1 } })).toBe('# managed by infra\nfirst\nneeds 1\n');
    const e = await userError(r.renderFile(roleDir, 'uses-needs.hbs', { vars: {} }));
    expect(e.pos).toMatchObject({ file: join(sharedDir, 'needs.hbs'), line: 2 });
    expect(e.message).toContain('"vars.p"');
  });

  it('a missing nested object names the whole path', async () => {
    const e = await userError(() => renderer().renderString('{{vars.db.name}}', { vars: {} }, 'site.yaml:4'));
    expect(e.message).toContain('missing variable "vars.db.name"');
  });

  it('a helper given a missing variable fails with the template position', async () => {
    const e = await userError(renderer().renderFile(roleDir, 'helper-undefined.hbs', { vars: {} }));
    expect(e.message).toContain('helper "join"');
    expect(e.pos?.line).toBe(2);
  });

  it('reveals Secrets into the content', async () => {
    const out = await renderer().renderFile(roleDir, 'secret.conf.hbs', { vars: { db: { password: new Secret('s3cr3t-render') } } });
    expect(out).toBe('password = s3cr3t-render\n');
  });

  it('renders nested paths and falls back to the shared dir', async () => {
    const r = renderer();
    expect(await r.renderFile(roleDir, 'sub/nested.hbs', { vars: { port: 2 } })).toBe('nested 2');
    expect(await r.renderFile(roleDir, 'shared-only.conf.hbs', { vars: { x: 'y' } })).toBe('shared y\n');
  });

  it('reports a template that does not exist', async () => {
    const e = await userError(renderer().renderFile(roleDir, 'nope.hbs', {}));
    expect(e.message).toContain('template not found');
  });

  it('refuses paths leaving the role: ../, absolute, symlinks out', async () => {
    const r = renderer();
    expect((await userError(r.renderFile(roleDir, '../../../outside.hbs', {}))).message).toContain('..');
    expect((await userError(r.renderFile(roleDir, join(root, 'outside.hbs'), {}))).message).toContain('absolute');
    expect((await userError(r.renderFile(roleDir, 'link-out.hbs', {}))).message).toContain('symlink');
    expect((await userError(r.renderFile(roleDir, 'dir-out/outside.hbs', {}))).message).toContain('symlink');
    // A link that stays inside is fine.
    expect(await r.renderFile(roleDir, 'link-in.hbs', { vars: { port: 3 } })).toContain('port = 3');
  });
});

describe('resolveInside', () => {
  it('accepts plain relative paths, including ones that do not exist yet', () => {
    const base = join(roleDir, 'templates');
    expect(resolveInside(base, 'sub/nested.hbs')).toBe(join(base, 'sub', 'nested.hbs'));
    expect(resolveInside(base, 'sub/new.hbs')).toBe(join(base, 'sub', 'new.hbs'));
  });
  it.each(['../x', 'a/../../x', 'a/..', '/etc/passwd', ''])('rejects %j', (rel) => {
    expect(() => resolveInside(join(roleDir, 'templates'), rel)).toThrow(UserError);
  });
  it('rejects a missing file under a symlinked directory that points outside', () => {
    expect(() => resolveInside(join(roleDir, 'templates'), 'dir-out/not-there.hbs')).toThrow(/symlink/);
  });
});

describe('renderString', () => {
  it('renders YAML task params and names the origin on errors', async () => {
    const r = renderer();
    expect(r.renderString('db {{ vars.db_name }}', { vars: { db_name: 'app' } }, 'site.yaml:3')).toBe('db app');
    const e = await userError(() => r.renderString('{{ vars.db_nme }}', { vars: { db_name: 'app' } }, 'playbooks/site.yaml:12'));
    expect(e.format()).toMatch(/^playbooks\/site\.yaml:12: template "\{\{ vars\.db_nme \}\}": missing variable "vars\.db_nme"/);
  });

  it('works when detached from the renderer (the engine passes it as a function)', () => {
    const { renderString } = renderer();
    expect(renderString('{{x}}', { x: 1 }, 'o')).toBe('1');
  });

  it('guards with #if and default do not trip strict mode', () => {
    const r = renderer();
    expect(r.renderString('{{#if vars.x}}yes{{else}}no{{/if}} {{default vars.y "d"}}', { vars: {} }, 'o')).toBe('no d');
  });
});

describe('compile (infra check)', () => {
  it('accepts a good template and returns its path', () => {
    expect(renderer().compile(roleDir, 'ok.conf.hbs')).toBe(join(roleDir, 'templates', 'ok.conf.hbs'));
  });
  it('reports syntax errors with the line', () => {
    let err: unknown;
    try {
      renderer().compile(roleDir, 'syntax.hbs');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('syntax error');
    expect((err as UserError).pos?.file).toContain('syntax.hbs');
  });
  it('reports unknown partials and helpers without rendering', () => {
    expect(() => renderer().compile(roleDir, 'unknown-partial.hbs')).toThrow(/unknown partial "nosuch"[\s\S]*/);
    expect(() => renderer().compile(roleDir, 'unknown-helper.hbs')).toThrow(/unknown helper "frobnicate"/);
  });
});
