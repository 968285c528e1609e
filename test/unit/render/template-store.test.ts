/**
 * Compiled templates kept between runs (template-store.ts, used by createRenderer's cacheDir):
 * a warm run answers exactly like a cold one, serves what was stored, and an edited template
 * is compiled afresh — never the stored compilation of its old text.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRenderer } from '../../../src/render/template.js';
import { templateStore } from '../../../src/render/template-store.js';

let root: string;
let roleDir: string;
let sharedDir: string;
let cacheDir: string;

const TEMPLATES: Record<string, string> = {
  'ok.conf.hbs': '{{> managed comment=";"}}\nport = {{vars.port}}\n{{#each vars.list}}- {{this}}\n{{/each}}',
  'missing.conf.hbs': 'a = 1\nb = {{vars.port}}\nc = {{vars.nope}}\n',
  'syntax.hbs': 'line1\n{{#if vars.x}}\nno close\n',
  'unknown-partial.hbs': 'x\n  {{> nosuch}}\n',
  'unknown-helper.hbs': '{{#if vars.port}}\n{{frobnicate vars.port}}{{/if}}\n',
};
const DATA = { vars: { port: 5432, list: ['a', 'b'] } };

function write(name: string, text: string): void {
  writeFileSync(join(roleDir, 'templates', name), text);
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'infra-template-store-'));
  roleDir = join(root, 'roles', 'web');
  sharedDir = join(root, 'templates');
  cacheDir = join(root, 'cache');
  mkdirSync(join(roleDir, 'templates'), { recursive: true });
  mkdirSync(sharedDir);
  writeFileSync(join(sharedDir, 'managed.hbs'), '{{default comment "#"}} managed by infra\n');
  for (const [name, text] of Object.entries(TEMPLATES)) write(name, text);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Everything a run learns from each template: its rendering or its error, and check's verdict. */
async function outcomes(cache: string | undefined): Promise<unknown[]> {
  const r = createRenderer({ sharedDir, cacheDir: cache });
  const out: unknown[] = [];
  for (const name of Object.keys(TEMPLATES)) {
    out.push(await r.renderFile(roleDir, name, DATA).catch((e: Error & { pos?: unknown; hint?: string }) => ({ error: e.message, pos: e.pos, hint: e.hint })));
    try {
      out.push(r.compile(roleDir, name));
    } catch (e) {
      const u = e as Error & { pos?: unknown; hint?: string };
      out.push({ error: u.message, pos: u.pos, hint: u.hint });
    }
  }
  return out;
}

describe('the template store', () => {
  it('a cold run and a warm run answer exactly like no store (renderings, errors with positions, check verdicts)', async () => {
    const none = await outcomes(undefined);
    expect(none).toContain('; managed by infra\nport = 5432\n- a\n- b\n');
    expect(none).toContainEqual(expect.objectContaining({ error: 'template: unknown helper "frobnicate"', pos: expect.objectContaining({ line: 2, col: 1 }) }));
    const cold = await outcomes(cacheDir);
    expect(readdirSync(cacheDir).length).toBeGreaterThan(0);
    const warm = await outcomes(cacheDir);
    expect(cold).toEqual(none);
    expect(warm).toEqual(none);
  });

  it('stores only templates that compiled (a syntax error is not stored)', async () => {
    const r = createRenderer({ sharedDir, cacheDir });
    await r.renderFile(roleDir, 'ok.conf.hbs', DATA);
    await expect(r.renderFile(roleDir, 'syntax.hbs', DATA)).rejects.toThrow(/syntax error/);
    expect(readdirSync(cacheDir)).toHaveLength(1);
  });

  it('a warm run uses the stored compilation (no compiling again)', async () => {
    await createRenderer({ sharedDir, cacheDir }).renderFile(roleDir, 'ok.conf.hbs', DATA);
    const [stored] = readdirSync(cacheDir);
    const path = join(cacheDir, stored);
    // Alters the stored compilation: only a run that uses it can print this.
    writeFileSync(path, readFileSync(path, 'utf8').replace('port = ', 'PORT FROM THE STORE = '));
    expect(await createRenderer({ sharedDir, cacheDir }).renderFile(roleDir, 'ok.conf.hbs', DATA)).toContain('PORT FROM THE STORE = 5432');
  });

  it('an edited template is compiled afresh, never served from its old text', async () => {
    await createRenderer({ sharedDir, cacheDir }).renderFile(roleDir, 'ok.conf.hbs', DATA);
    write('ok.conf.hbs', 'listen {{vars.port}}\n');
    expect(await createRenderer({ sharedDir, cacheDir }).renderFile(roleDir, 'ok.conf.hbs', DATA)).toBe('listen 5432\n');
    // An edit that breaks it is reported, not hidden by the stored compilation.
    write('ok.conf.hbs', 'listen {{vars.port\n');
    await expect(createRenderer({ sharedDir, cacheDir }).renderFile(roleDir, 'ok.conf.hbs', DATA)).rejects.toThrow(/syntax error/);
  });

  it('a damaged store entry is compiled again', async () => {
    await createRenderer({ sharedDir, cacheDir }).renderFile(roleDir, 'ok.conf.hbs', DATA);
    const [stored] = readdirSync(cacheDir);
    writeFileSync(join(cacheDir, stored), '{"spec": 1');
    expect(await createRenderer({ sharedDir, cacheDir }).renderFile(roleDir, 'ok.conf.hbs', DATA)).toContain('port = 5432');
  });

  it('an unwritable cache dir only costs the compilation', async () => {
    const file = join(root, 'not-a-dir');
    writeFileSync(file, '');
    expect(await createRenderer({ sharedDir, cacheDir: join(file, 'cache') }).renderFile(roleDir, 'ok.conf.hbs', DATA)).toContain('port = 5432');
  });

  it('entries are keyed by what shapes the compilation besides the text (Handlebars version, options)', () => {
    const a = templateStore(cacheDir, 'handlebars 4.7.8');
    a.put('text', { refs: [], spec: '{}' });
    expect(a.get('text')).toEqual({ refs: [], spec: '{}' });
    expect(templateStore(cacheDir, 'handlebars 4.7.9').get('text')).toBeUndefined();
    expect(a.get('other text')).toBeUndefined();
  });
});
