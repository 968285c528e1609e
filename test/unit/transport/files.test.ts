/** put/get over a real local session (LocalTransport, no become), in a temp directory. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTransport } from '../../../src/transport/local.js';

let t: LocalTransport;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'infra-files-'));
  t = new LocalTransport({
    name: 'local',
    conn: { connection: 'local', address: 'localhost', port: 22, user: 'root', become: false },
  });
  await t.connect();
});
afterAll(async () => {
  await t?.close();
});

const mode = async (p: string): Promise<string> => ((await stat(p)).mode & 0o7777).toString(8).padStart(4, '0');

describe('files over the session', () => {
  it('put writes bytes with the mode and leaves no temp file', async () => {
    const p = join(dir, 'a.conf');
    const bytes = randomBytes(200_000);
    await t.put(p, bytes, { mode: '0640' });
    expect((await readFile(p)).equals(bytes)).toBe(true);
    expect(await mode(p)).toBe('0640');
    expect((await readdir(dir)).filter((f) => f.includes('.infra-'))).toEqual([]);
  });

  it('put keeps an existing mode when none is given; 0644 for a new file', async () => {
    const p = join(dir, 'keep');
    await t.put(p, 'one', { mode: '0600' });
    await t.put(p, 'two');
    expect(await mode(p)).toBe('0600');
    await t.put(join(dir, 'new'), 'x');
    expect(await mode(join(dir, 'new'))).toBe('0644');
  });

  it('validate failure: old file untouched, temp deleted, validator stderr in the error', async () => {
    const p = join(dir, 'v.conf');
    await writeFile(p, 'good');
    await expect(
      t.put(p, 'bad', { validate: "grep -q good %s || { echo 'syntax error at line 1' >&2; exit 1; }" }),
    ).rejects.toThrow(/validate failed.*syntax error at line 1/);
    expect(await readFile(p, 'utf8')).toBe('good');
    expect((await readdir(dir)).filter((f) => f.includes('.infra-'))).toEqual([]);
  });

  it('validate success: the temp path replaces %s and the file is installed', async () => {
    const p = join(dir, 'ok.conf');
    await t.put(p, 'good stuff', { validate: 'grep -q good %s && test "$(stat -c %a %s)" = 600' });
    expect(await readFile(p, 'utf8')).toBe('good stuff');
  });

  it('paths with spaces and quotes are quoted', async () => {
    const p = join(dir, "it's a file; rm -rf x");
    await t.put(p, 'q');
    expect(await readFile(p, 'utf8')).toBe('q');
    expect((await t.get(p))?.toString()).toBe('q');
  });

  it('get returns bytes, or null for a missing file', async () => {
    const bytes = Buffer.from([0, 255, 0, 10]);
    await writeFile(join(dir, 'bin'), bytes);
    expect((await t.get(join(dir, 'bin')))!.equals(bytes)).toBe(true);
    expect(await t.get(join(dir, 'missing'))).toBeNull();
  });

  it('put into a missing directory fails with a clear error', async () => {
    await expect(t.put(join(dir, 'nope', 'f'), 'x')).rejects.toThrow(/put .*nope\/f failed/);
  });

  it('rejects a bad mode before touching the host', async () => {
    await expect(t.put(join(dir, 'm'), 'x', { mode: 'rwx' })).rejects.toThrow(/mode must be octal/);
  });

  it('counts a connection, one channel and the commands', () => {
    expect(t.counters.connections).toBe(1);
    expect(t.counters.channels).toBe(1);
    expect(t.counters.commands).toBeGreaterThan(5);
  });
});
