/**
 * put()/remove() keeping what they replace, over a real local session shell. The session is
 * root here, so the run's area is /var/lib/infra/runs/<id>: each test run uses its own random
 * id and removes only that area.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTransport } from '../../../src/transport/local.js';
import { copyBackScript, type KeepOptions } from '../../../src/transport/keep.js';
import { parseManifest } from '../../../src/rollback/manifest.js';

let t: LocalTransport;
let dir: string;
let area: string;
const runId = randomBytes(4).toString('hex');
const header = JSON.stringify({ t: 'run', run: runId, at: new Date().toISOString(), user: 'test', controller: 'test', command: 'infra apply', inventory: 'unit' });
const keep = (task: number, seen = false, more: Partial<KeepOptions> = {}): KeepOptions => ({ runId, header, task, seen, ...more });
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'infra-keep-'));
  t = new LocalTransport({ name: 'local', conn: { connection: 'local', address: 'localhost', port: 22, user: 'root', become: false } });
  await t.connect();
  const r = await t.run('if [ "$(id -u)" = 0 ]; then echo /var/lib/infra/runs; else echo "${XDG_STATE_HOME:-$HOME/.local/state}/infra/runs"; fi');
  area = join(r.stdout.trim(), runId);
});
afterAll(async () => {
  await t?.close();
  if (area) await rm(area, { recursive: true, force: true });
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('keeping what put() and remove() replace', () => {
  it('keeps the first old version byte-exact with its mode, records each write, and what remove() removed', async () => {
    const p = join(dir, 'app.conf');
    const old = randomBytes(5000);
    await writeFile(p, old);
    await chmod(p, 0o640);
    await t.put(p, 'v2\n', { mode: '0644', keep: keep(1) });
    await t.put(p, 'v3\n', { keep: keep(2, true) }); // a second write of the run: the first copy stays
    const copy = join(area, 'files', p);
    expect((await readFile(copy)).equals(old)).toBe(true);
    expect(((await stat(copy)).mode & 0o7777).toString(8)).toBe('640');
    expect(((await stat(area)).mode & 0o777).toString(8)).toBe('700');

    const created = join(dir, 'new.key');
    await t.put(created, 'secret\n', { mode: '0600', sensitive: true, validate: 'test -s %s', keep: keep(3) });
    await t.remove(p, keep(4, true));
    await expect(stat(p)).rejects.toThrow();

    const m = parseManifest(await readFile(join(area, 'manifest.jsonl'), 'utf8'));
    expect(m.header.run).toBe(runId);
    const [conf, key] = m.paths;
    expect(conf).toMatchObject({ path: p, tasks: [1, 2, 4], after: null, before: { kind: 'file', sha256: sha(old), mode: '640', size: 5000 } });
    expect(key).toMatchObject({ path: created, before: null, after: { kind: 'file', sha256: sha('secret\n'), mode: '600' }, sensitive: true, validate: 'test -s %s' });
    // Nothing of a created file is copied (there was nothing before it).
    await expect(stat(join(area, 'files', created))).rejects.toThrow();
  });

  it('remove() of a missing path is fine and records nothing', async () => {
    const before = await readFile(join(area, 'manifest.jsonl'), 'utf8');
    await t.remove(join(dir, 'never-was'), keep(5));
    expect(await readFile(join(area, 'manifest.jsonl'), 'utf8')).toBe(before);
  });

  it('a failed validate keeps nothing and records nothing', async () => {
    const p = join(dir, 'v.conf');
    await writeFile(p, 'good\n');
    const before = await readFile(join(area, 'manifest.jsonl'), 'utf8');
    await expect(t.put(p, 'bad\n', { validate: 'false %s', keep: keep(6) })).rejects.toThrow(/validate failed/);
    expect(await readFile(join(area, 'manifest.jsonl'), 'utf8')).toBe(before);
    await expect(stat(join(area, 'files', p))).rejects.toThrow();
  });

  it('copyBackScript puts back a kept symlink and a directory tree as they were', async () => {
    const kept = join(dir, 'kept');
    await mkdir(join(kept, 'tree', 'sub'), { recursive: true });
    await writeFile(join(kept, 'tree', 'sub', 'f'), 'leaf');
    await chmod(join(kept, 'tree', 'sub'), 0o750);
    await symlink('/run/target', join(kept, 'link'));
    for (const name of ['link', 'tree']) {
      const r = await t.run(copyBackScript(join(kept, name), join(dir, name)));
      expect(r.code, r.stderr).toBe(0);
    }
    expect(await readlink(join(dir, 'link'))).toBe('/run/target');
    expect(await readFile(join(dir, 'tree', 'sub', 'f'), 'utf8')).toBe('leaf');
    expect(((await lstat(join(dir, 'tree', 'sub'))).mode & 0o777).toString(8)).toBe('750');
    // Never over something: the caller removes (and keeps) what is there first.
    const again = await t.run(copyBackScript(join(kept, 'link'), join(dir, 'link')));
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('exists');
  });
});
