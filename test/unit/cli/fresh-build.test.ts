/** bin/infra runs dist/ only while it is newer than every source file and the installed packages (bin/compiled.mjs). */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freshBuild } from '../../../bin/compiled.mjs';

let root: string;
const BUILT = new Date('2026-01-02T00:00:00Z');
const BEFORE = new Date('2026-01-01T00:00:00Z');
const AFTER = new Date('2026-01-03T00:00:00Z');

function file(rel: string, when: Date, text = ''): void {
  const path = join(root, rel);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  utimesSync(path, when, when);
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'infra-fresh-'));
  file('src/cli/main.ts', BEFORE);
  file('src/engine/run.ts', BEFORE);
  file('roles/web/role.ts', BEFORE);
  file('dist/src/cli/main.js', BUILT);
  file('dist/package.json', BUILT, '{}');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('freshBuild', () => {
  it('a build newer than every file under src/ and roles/ is used', () => {
    expect(freshBuild(root)).toBe(join(root, 'dist/src/cli/main.js'));
  });

  it.each(['src/engine/run.ts', 'roles/web/role.ts', 'src/new-file.ts', 'roles/web/files/key.asc'])('an edit after the build (%s) means the sources', (rel) => {
    file(rel, AFTER);
    expect(freshBuild(root)).toBeUndefined();
  });

  it.each(['package.json', 'node_modules/.package-lock.json'])('packages installed after the build (%s) mean the sources: the bundle carries the old ones', (rel) => {
    file(rel, BEFORE, '{}');
    expect(freshBuild(root)).toBe(join(root, 'dist/src/cli/main.js'));
    file(rel, AFTER, '{}');
    expect(freshBuild(root)).toBeUndefined();
  });

  it('no stamp (never built, or a build under way or failed) means the sources', () => {
    rmSync(join(root, 'dist/package.json'));
    expect(freshBuild(root)).toBeUndefined();
  });

  it('no compiled entry point means the sources', () => {
    rmSync(join(root, 'dist/src/cli/main.js'));
    expect(freshBuild(root)).toBeUndefined();
  });
});
