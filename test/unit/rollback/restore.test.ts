/** rollback.file decisions: as before, conflict, not a file, created, restored (secrets hidden), damaged copy. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { restore, type RestoreParams } from '../../../src/rollback/restore.js';
import type { PathState } from '../../../src/rollback/manifest.js';
import { fakeHost, withChanges } from '../modules/fake-host.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const state = (content: string, mode = '644'): PathState => ({ kind: 'file', sha256: sha(content), mode, uid: 0, gid: 0, size: content.length });
const COPY = '/var/lib/infra/runs/0badcafe/files/etc/app.conf';

function params(before: PathState, after: PathState, o: Partial<RestoreParams> = {}): RestoreParams {
  return { run: '0badcafe', runsDir: '/var/lib/infra/runs', kept: { path: '/etc/app.conf', before, after, tasks: [1], sensitive: false }, force: false, missingHandlers: [], ...o };
}

/** A host whose path is `now`, and whose files (get) are `files`. */
function host(now: PathState, files: Record<string, string> = {}, more: { code?: number; stderr?: string }[] = []) {
  const h = fakeHost([{ stdout: JSON.stringify(now) + '\n' }, ...more]);
  return Object.assign(h, { get: async (p: string) => (p in files ? Buffer.from(files[p]) : null) });
}

describe('rollback.file', () => {
  it('a path already as it was before the run: nothing to do', async () => {
    const c = await restore.module.check(host(state('old')), params(state('old'), state('new')));
    expect(c).toMatchObject({ changes: [], reason: '/etc/app.conf is as it was before run 0badcafe' });
  });

  it('a path changed after the run is a conflict, left alone unless forced', async () => {
    const p = params(state('old'), state('new'));
    const c = await restore.module.check(host(state('edited by hand')), p);
    expect(c).toMatchObject({ changes: [], skipped: true });
    expect(c.warning).toMatch(/^conflict: \/etc\/app.conf changed after run 0badcafe \(now sha256 [0-9a-f]{12}, 0644 0:0; the run left sha256/);
    const forced = await restore.module.check(host(state('edited by hand'), { [COPY]: 'old', '/etc/app.conf': 'edited by hand' }), { ...p, force: true });
    expect(forced.changes.map((x) => x.what)).toEqual(['restore (from before run 0badcafe)']);
  });

  it('a link (or tree) the run replaced: what is there now is removed (kept), the copy put back with cp -a', async () => {
    const h = host(state('new'), {}, [{ code: 0 }]);
    const p = params({ kind: 'link' }, state('new'));
    const c = await restore.module.check(h, p);
    expect(c.changes.map((x) => x.what)).toEqual(['restore the link (from before run 0badcafe)']);
    await restore.module.apply(h, p, withChanges(c));
    expect(h.removed).toEqual(['/etc/app.conf']);
    expect(h.commands.at(-1)).toContain(`cp -a -- ${COPY} "./$t"`);
  });

  it('a socket or fifo before the run is named, not restored', async () => {
    const c = await restore.module.check(host(state('new')), params({ kind: 'other' }, state('new')));
    expect(c).toMatchObject({ changes: [], skipped: true });
    expect(c.warning).toContain(`its copy is ${COPY}`);
  });

  it('a file the run created is removed', async () => {
    const h = host(state('new'), { '/etc/app.conf': 'new' });
    const p = params(null, state('new'));
    const c = await restore.module.check(h, p);
    expect(c.diff).toEqual([{ kind: 'file', path: '/etc/app.conf', before: 'new', after: null, sensitive: undefined }]);
    await restore.module.apply(h, p, withChanges(c));
    expect(h.removed).toEqual(['/etc/app.conf']);
  });

  it('restores the kept bytes with their owner, mode and validate; a secret-bearing file shows no content', async () => {
    const before: PathState = { kind: 'file', sha256: sha('password=old'), mode: '600', uid: 0, gid: 112, size: 12 };
    const h = host(state('password=new', '600'), { [COPY]: 'password=old', '/etc/app.conf': 'password=new' });
    const p = params(before, state('password=new', '600'));
    p.kept.validate = 'app --check %s';
    const c = await restore.module.check(h, p);
    expect(JSON.stringify(c.diff)).not.toContain('password');
    expect(c.diff?.[0]).toMatchObject({ sensitive: true });
    await restore.module.apply(h, p, withChanges(c));
    expect(h.puts).toEqual([{ path: '/etc/app.conf', bytes: 'password=old', opts: { mode: '0600', owner: '0', group: '112', validate: 'app --check %s', sensitive: true } }]);
  });

  it('a kept copy that does not match the manifest is not restored', async () => {
    const h = host(state('new'), { [COPY]: 'tampered', '/etc/app.conf': 'new' });
    const p = params(state('old'), state('new'));
    const c = await restore.module.check(h, p);
    await expect(restore.module.apply(h, p, withChanges(c))).rejects.toThrow(/does not match the manifest's sha256: \/etc\/app.conf left unchanged/);
    expect(h.puts).toEqual([]);
  });
});
