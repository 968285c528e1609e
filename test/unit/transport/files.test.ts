/** put/get over a real local session (LocalTransport, no become), in a temp directory. */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTransport } from '../../../src/transport/local.js';
import { putScript } from '../../../src/transport/files.js';
import { isAccountId } from '../../../src/shell/account.js';

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

  it('validate success: the temp path replaces %s (with its final mode) and the file is installed', async () => {
    const p = join(dir, 'ok.conf');
    await t.put(p, 'good stuff', { mode: '0440', validate: 'grep -q good %s && test "$(stat -c %a %s)" = 440' });
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

  it.each([
    ['an option as owner', { owner: '--reference=/etc/shadow' }],
    ['an option as group', { group: '-R' }],
    ['a space', { owner: 'root daemon' }],
    ['a name over 32 characters', { owner: 'a'.repeat(33) }],
    ['a uid out of range', { owner: '4294967295' }],
  ])('rejects %s before touching the host', async (_n, opts) => {
    const p = join(dir, 'owner-check');
    await expect(t.put(p, 'x', opts)).rejects.toThrow(/must be an account name .* or a numeric id/);
    await expect(stat(p)).rejects.toThrow(/ENOENT/);
  });

  it.each(['relative/path', '/etc/../etc/passwd', '/etc/./x', '/etc//x', '/etc/x/'])('rejects the unnormalized path %j', (path) => {
    expect(() => putScript(path, '.t')).toThrow(/absolute and normalized/);
  });

  it('refuses a directory everyone can write (not sticky): nothing is written', async () => {
    const open = join(dir, 'open');
    await mkdir(open);
    await chmod(open, 0o777);
    await expect(t.put(join(open, 'f'), 'x')).rejects.toThrow(/put .*open\/f: refusing: .*open is writable by everyone/);
    expect(await readdir(open)).toEqual([]);
  });

  it('refuses a path through a symlink in a directory everyone can write', async () => {
    const open = join(dir, 'open2');
    await mkdir(open);
    await chmod(open, 0o777);
    await mkdir(join(dir, 'elsewhere'));
    await symlink(join(dir, 'elsewhere'), join(open, 'link'));
    await expect(t.put(join(open, 'link', 'f'), 'x')).rejects.toThrow(/refusing: .*open2\/link is a symlink that a user other than root can replace/);
    expect(await readdir(join(dir, 'elsewhere'))).toEqual([]);
  });

  it('does not write through a symlink at the destination: it replaces it', async () => {
    const target = join(dir, 'target');
    await writeFile(target, 'keep');
    await symlink(target, join(dir, 'dest-link'));
    await t.put(join(dir, 'dest-link'), 'new');
    expect(await readFile(target, 'utf8')).toBe('keep');
    expect(await readFile(join(dir, 'dest-link'), 'utf8')).toBe('new');
  });

  it('counts a connection, one channel and the commands', () => {
    expect(t.counters.connections).toBe(1);
    expect(t.counters.channels).toBe(1);
    expect(t.counters.commands).toBeGreaterThan(5);
  });
});

describe('isAccountId', () => {
  it.each([
    ['root', true], ['www-data', true], ['_apt', true], ['machine$', true], ['0', true], ['1000', true], ['a'.repeat(32), true],
    ['', false], ['Root', false], ['-x', false], ['--reference=/etc/shadow', false], ['a b', false], ['a:b', false],
    ['1a', false], ['a'.repeat(33), false], ['4294967295', false], ['99999999999', false], ['x$y', false],
  ])('%j → %s', (v, ok) => {
    expect(isAccountId(v)).toBe(ok);
  });
});
