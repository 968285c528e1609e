import { describe, expect, it } from 'vitest';
import { files } from '../../../src/modules/index.js';
import { parseProbe, probeCommand, sha256 } from '../../../src/modules/file-state.js';
import { planFile } from '../../../src/modules/file-plan.js';
import { editBlock, editLine } from '../../../src/modules/line-edit.js';
import { Secret } from '../../../src/secrets/secret.js';
import { fakeHost, fileProbe, withChanges } from './fake-host.js';

const parse = <P>(f: { module: { params: { parse(v: unknown): P } } }, v: unknown): P => f.module.params.parse(v);

describe('parseProbe', () => {
  it.each([
    ['absent', 'absent\n', { kind: 'absent' }],
    ['directory', 'directory 755 root root 0 0 4096\n', { kind: 'directory', mode: '0755', owner: 'root', uid: 0, size: 4096 }],
    ['file, not fetched', 'file 640 root adm 0 4 6\nabc123\n', { kind: 'file', mode: '0640', group: 'adm', gid: 4, sha256: 'abc123' }],
    ['file, fetched', 'file 600 app app 1000 1000 3\nabc\ncontent:aGkK\n', { kind: 'file', mode: '0600', content: Buffer.from('hi\n') }],
    ['empty file, fetched', 'file 644 root root 0 0 0\ne3b0\ncontent:\n', { kind: 'file', content: Buffer.alloc(0) }],
    ['setuid mode', 'file 4755 root root 0 0 1\nx\n', { mode: '4755' }],
    ['symlink with its target', 'link 777 root root 0 0 7\ntarget:../x y\n', { kind: 'link', linkTarget: '../x y' }],
  ])('%s', (_name, out, want) => {
    expect(parseProbe(out)).toMatchObject(want);
  });

  it("fetched whole ('always'): no hash line, the controller hashes the content", () => {
    expect(probeCommand('/etc/environment', 'always')).not.toContain('sha256sum');
    expect(parseProbe('file 644 root root 0 0 3\ncontent:aGkK\n')).toMatchObject({ content: Buffer.from('hi\n'), sha256: sha256('hi\n') });
    expect(parseProbe('file 644 root root 0 0 0\ncontent:\n')).toMatchObject({ content: Buffer.alloc(0), sha256: sha256('') });
  });

  it('leaves content undefined when not fetched', () => {
    expect(parseProbe('file 640 root adm 0 4 6\nabc\n').content).toBeUndefined();
  });

  it('rejects garbage', () => {
    expect(() => parseProbe('bash: stat: not found\n')).toThrow(/unexpected file probe output/);
  });

  it('quotes hostile paths', () => {
    expect(probeCommand("/tmp/x'; rm -rf / #")).toContain(`p='/tmp/x'\\''; rm -rf / #'`);
  });
});

describe('planFile', () => {
  const want = { path: '/etc/x', content: Buffer.from('new\n'), mode: '0600' };
  it.each([
    ['absent → create', { kind: 'absent' as const }, ['create'], true],
    ['same content, other mode → rewritten (no chmod by path)', parseProbe(fileProbe({ content: 'new\n', mode: '644' })), ['mode'], true],
    ['other content → write', parseProbe(fileProbe({ content: 'old\n', mode: '600' })), ['content'], true],
    ['same → nothing', parseProbe(fileProbe({ content: 'new\n', mode: '600' })), [], false],
  ])('%s', (_n, state, whats, write) => {
    const plan = planFile(want, state);
    expect(plan.changes.map((c) => c.what)).toEqual(whats);
    expect(plan.write).toBe(write);
  });

  it('refuses to overwrite a directory', () => {
    expect(() => planFile(want, { kind: 'directory' })).toThrow(/is a directory/);
  });

  it('owner given by name or uid both match', () => {
    const state = parseProbe(fileProbe({ content: 'new\n', mode: '600', owner: 'app', uid: 1000 }));
    expect(planFile({ ...want, owner: 'app' }, state).changes).toEqual([]);
    expect(planFile({ ...want, owner: '1000' }, state).changes).toEqual([]);
    expect(planFile({ ...want, owner: 'root' }, state).changes).toEqual([{ what: 'owner', from: 'app', to: 'root' }]);
  });
});

describe('editLine', () => {
  const base = ['# sshd', 'Port 22', '#PermitRootLogin yes', 'UsePAM yes'];
  it.each([
    ['present, exact line exists', { line: 'Port 22', state: 'present' as const }, base],
    ['present, appended', { line: 'X 1', state: 'present' as const }, [...base, 'X 1']],
    ['regexp replaces last match', { line: 'PermitRootLogin no', regexp: '^#?PermitRootLogin', state: 'present' as const }, ['# sshd', 'Port 22', 'PermitRootLogin no', 'UsePAM yes']],
    ['regexp without match, line present elsewhere: unchanged', { line: 'Port 22', regexp: '^Nope', state: 'present' as const }, base],
    ['insertAfter last match', { line: 'A', insertAfter: '^Port', state: 'present' as const }, ['# sshd', 'Port 22', 'A', '#PermitRootLogin yes', 'UsePAM yes']],
    ['insertBefore BOF', { line: 'A', insertBefore: 'BOF', state: 'present' as const }, ['A', ...base]],
    ['insertBefore without match appends', { line: 'A', insertBefore: '^Nope', state: 'present' as const }, [...base, 'A']],
    ['absent by line', { line: 'UsePAM yes', state: 'absent' as const }, base.slice(0, 3)],
    ['absent by regexp removes all', { regexp: '^(Port|UsePAM)', state: 'absent' as const }, ['# sshd', '#PermitRootLogin yes']],
  ])('%s', (_n, edit, want) => {
    expect(editLine(base, edit)).toEqual(want);
  });
});

describe('editBlock', () => {
  const m = { marker: '# {mark} X', markerBegin: 'BEGIN', markerEnd: 'END' };
  it.each([
    ['appends when missing', ['a'], { ...m, block: 'x\ny\n', state: 'present' as const }, ['a', '# BEGIN X', 'x', 'y', '# END X']],
    ['replaces between markers', ['a', '# BEGIN X', 'old', '# END X', 'b'], { ...m, block: 'new', state: 'present' as const }, ['a', '# BEGIN X', 'new', '# END X', 'b']],
    ['removes', ['a', '# BEGIN X', 'old', '# END X', 'b'], { ...m, block: '', state: 'absent' as const }, ['a', 'b']],
    ['insertBefore', ['a', 'b'], { ...m, block: 'x', insertBefore: '^b', state: 'present' as const }, ['a', '# BEGIN X', 'x', '# END X', 'b']],
    ['a lone begin marker is not a block', ['# BEGIN X', 'a'], { ...m, block: 'x', state: 'present' as const }, ['# BEGIN X', 'a', '# BEGIN X', 'x', '# END X']],
  ])('%s', (_n, lines, edit, want) => {
    expect(editBlock(lines, edit)).toEqual(want);
  });
});

describe('files.* check() on a fake host', () => {
  it('files.file: one round trip, diff with the old content, nothing written in check mode', async () => {
    const host = fakeHost([{ stdout: fileProbe({ content: 'old\n', mode: '644' }) }], { checkMode: true });
    const c = await files.file.module.check(host, parse(files.file, { path: '/etc/app.conf', content: 'new\n', mode: '0644' }));
    expect(host.commands).toHaveLength(1);
    expect(c.changes.map((x) => x.what)).toEqual(['content']);
    expect(c.diff).toEqual([{ kind: 'file', path: '/etc/app.conf', before: 'old\n', after: 'new\n', sensitive: undefined }]);
    expect(host.puts).toEqual([]);
  });

  it('files.file: a Secret content is written but its diff is sensitive', async () => {
    const host = fakeHost([{ stdout: 'absent\n' }]);
    const p = parse(files.file, { path: '/etc/app.key', content: new Secret('s3cr3t-value'), mode: '0600' });
    const c = await files.file.module.check(host, p);
    expect(c.diff?.[0]).toMatchObject({ sensitive: true });
    await files.file.module.apply(host, p, withChanges(c));
    expect(host.puts).toEqual([{ path: '/etc/app.key', bytes: 's3cr3t-value', opts: { mode: '0600', owner: undefined, group: undefined, validate: undefined, sensitive: true } }]);
    expect(host.commands.join('\n')).not.toContain('s3cr3t-value');
  });

  it('files.file: a new sensitive file without a mode is written 0600; an existing one keeps its mode', async () => {
    const secret = fakeHost([{ stdout: 'absent\n' }]);
    const p = parse(files.file, { path: '/etc/app.env', content: new Secret('db-pass-4242') });
    await files.file.module.apply(secret, p, withChanges(await files.file.module.check(secret, p)));
    expect(secret.puts[0].opts?.mode).toBe('0600');

    const flagged = fakeHost([{ stdout: 'absent\n' }]);
    const q = parse(files.file, { path: '/etc/app.env', content: 'x', sensitive: true });
    await files.file.module.apply(flagged, q, withChanges(await files.file.module.check(flagged, q)));
    expect(flagged.puts[0].opts?.mode).toBe('0600');

    const plain = fakeHost([{ stdout: 'absent\n' }]);
    const r = parse(files.file, { path: '/etc/app.conf', content: 'x' });
    await files.file.module.apply(plain, r, withChanges(await files.file.module.check(plain, r)));
    expect(plain.puts[0].opts?.mode).toBe('0644');

    const existing = fakeHost([{ stdout: fileProbe({ content: 'old\n', mode: '640' }) }]);
    await files.file.module.apply(existing, p, withChanges(await files.file.module.check(existing, p)));
    expect(existing.puts[0].opts?.mode).toBe('0640');
  });

  it.each([
    ['owner', '--reference=/etc/shadow'],
    ['group', '-R'],
    ['owner', 'root:root'],
    ['owner', 'a'.repeat(33)],
  ])('files.file: %s %j is not an account: refused by the schema', (key, value) => {
    const r = files.file.module.params.safeParse({ path: '/etc/a', content: 'x', [key]: value });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain('must be an account name');
  });

  it('files.file: numeric owner and group ids are accepted (a YAML number too)', () => {
    expect(parse(files.file, { path: '/etc/a', content: 'x', owner: 1000, group: '0' })).toMatchObject({ owner: '1000', group: '0' });
  });

  it.each([
    ['files.line', () => parse(files.line, { path: '/etc/resolv.conf', line: 'options rotate' }), files.line.module],
    ['files.block', () => parse(files.block, { path: '/etc/resolv.conf', block: 'options rotate' }), files.block.module],
  ] as const)('%s on a symlink refuses with the link target (it would replace the link with a one-line file)', async (_n, params, module) => {
    const host = fakeHost([{ stdout: 'link 777 root root 0 0 39\ntarget:../run/systemd/resolve/stub-resolv.conf\n' }]);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    await expect((module as any).check(host, params())).rejects.toThrow(
      /refusing to edit \/etc\/resolv.conf: it is a symlink to \.\.\/run\/systemd\/resolve\/stub-resolv.conf; .*give the target's path/,
    );
    expect(host.puts).toEqual([]);
  });

  it('files.line: a file whose read lost its head (over the output cap) fails instead of editing a tail', async () => {
    const host = fakeHost([{ stdout: fileProbe({ content: 'tail only\n' }), droppedStdout: 70_000_000 }]);
    await expect(files.line.module.check(host, parse(files.line, { path: '/var/big.conf', line: 'x' }))).rejects.toThrow(
      /read \/var\/big.conf: the output is too large \(70000000 bytes over the limit\)/,
    );
  });

  it('files.file: up to date → reason, no changes', async () => {
    const host = fakeHost([{ stdout: fileProbe({ content: 'same\n', mode: '640', fetched: false }) }]);
    const c = await files.file.module.check(host, parse(files.file, { path: '/etc/a', content: 'same\n', mode: '640' }));
    expect(c).toMatchObject({ changes: [], reason: '/etc/a is up to date' });
  });

  it('files.file: rewriting keeps the old owner and mode unless asked', async () => {
    const host = fakeHost([{ stdout: fileProbe({ content: 'old\n', mode: '640', owner: 'app', uid: 1000, gid: 1000 }) }]);
    const p = parse(files.file, { path: '/etc/a', content: 'new\n' });
    await files.file.module.apply(host, p, withChanges(await files.file.module.check(host, p)));
    expect(host.puts[0].opts).toMatchObject({ mode: '0640', owner: '1000', group: '1000' });
  });

  it('files.template passes vars over the host vars', async () => {
    const host = fakeHost([{ stdout: 'absent\n' }], { templates: { 'a.hbs': 'say {{vars.greeting}}\n' } });
    const c = await files.template.module.check(host, parse(files.template, { src: 'a.hbs', dest: '/etc/a', vars: { greeting: 'hello' } }));
    expect(c.diff?.[0]).toMatchObject({ after: 'say hello\n' });
  });

  it('files.line: a missing file is an error, but only a planned change in check mode', async () => {
    const p = parse(files.line, { path: '/etc/a', line: 'x' });
    await expect(files.line.module.check(fakeHost([{ stdout: 'absent\n' }]), p)).rejects.toThrow(/does not exist/);
    const c = await files.line.module.check(fakeHost([{ stdout: 'absent\n' }], { checkMode: true }), p);
    expect(c.changes).toHaveLength(1);
  });

  it('files.directory: wrong kind is an error', async () => {
    const host = fakeHost([{ stdout: fileProbe({ content: 'x' }) }]);
    await expect(files.directory.module.check(host, parse(files.directory, { path: '/srv/x' }))).rejects.toThrow(/not a directory/);
  });

  it.each([
    [files.file, { path: 'relative', content: 'x' }],
    [files.file, { path: '/', content: 'x' }],
    [files.file, { path: '/a', content: 'x', src: 'b' }],
    [files.file, { path: '/a', content: 'x', mode: '0999' }],
    [files.file, { path: '/a', content: 'x', validate: 'sshd -t' }],
    [files.line, { path: '/a', line: 'x', regexp: '(' }],
    [files.line, { path: '/a', line: 'a\nb' }],
    [files.block, { path: '/a', marker: '# no mark' }],
  ])('rejects bad params %#', (f, params) => {
    expect(f.module.params.safeParse(params).success).toBe(false);
  });

  it('reads YAML numbers as octal digits for mode', () => {
    expect(parse(files.file, { path: '/a', content: '', mode: 644 })).toMatchObject({ mode: '0644' });
    expect(parse(files.file, { path: '/a', content: '', mode: '755' })).toMatchObject({ mode: '0755' });
  });
});
