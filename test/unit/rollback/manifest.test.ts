/** Reading manifests and host histories (pure), and retention input checks. */
import { describe, expect, it } from 'vitest';
import { describeState, isSensitive, notFileTasks, parseManifest, sameState, writersOf, type PathState } from '../../../src/rollback/manifest.js';
import { formatHistory, parseHistory } from '../../../src/rollback/history.js';
import { pruneKept, retentionOf, RunKeeper } from '../../../src/rollback/keeper.js';
import type { HostRuns } from '../../../src/engine/host-run.js';
import { UserError } from '../../../src/errors.js';
import type { Inventory } from '../../../src/inventory/types.js';

const file = (sha: string, mode = '644', uid = 0): PathState => ({ kind: 'file', sha256: sha.padEnd(64, '0'), mode, uid, gid: 0, size: 10 });
const header = { t: 'run', run: 'aaaa0001', at: '2026-11-30T21:00:00.000Z', user: 'ops', controller: 'ctl', command: 'infra apply -i lab', inventory: 'lab' };
const lines = (...o: object[]) => o.map((x) => JSON.stringify(x)).join('\n') + '\n';

describe('parseManifest', () => {
  const text = lines(
    header,
    { t: 'file', task: 2, path: '/etc/a', before: file('a1'), after: file('a2') },
    { t: 'task', task: 2, label: 'files.template /etc/a', module: 'files.template', role: 'web', notify: ['reload web'], changes: [] },
    { t: 'file', task: 5, path: '/etc/a', before: file('a2'), after: file('a3'), sensitive: true },
    { t: 'task', task: 5, label: 'files.line /etc/a', module: 'files.line', role: 'web', notify: [], changes: [] },
    { t: 'file', task: 6, path: '/etc/new', before: null, after: file('n1') },
    { t: 'task', task: 7, label: 'apt.packages nginx', module: 'apt.packages', notify: [], changes: [{ what: 'install nginx', to: '1.22' }] },
  );

  it('keeps, per path, the state before the first write and after the last', () => {
    const m = parseManifest(text + '{"t":"file","task":9,"pa'); // a line cut by a full disk is skipped
    expect(m.header.run).toBe('aaaa0001');
    expect(m.paths.map((p) => [p.path, p.before, p.after, p.tasks, p.sensitive])).toEqual([
      ['/etc/a', file('a1'), file('a3'), [2, 5], true],
      ['/etc/new', null, file('n1'), [6], false],
    ]);
    expect(writersOf(m, m.paths[0]).map((t) => t.label)).toEqual(['files.template /etc/a', 'files.line /etc/a']);
    expect(notFileTasks(m).map((t) => t.module)).toEqual(['apt.packages']);
  });

  it('refuses a manifest without its run line', () => {
    expect(() => parseManifest(lines({ t: 'task', task: 1 }))).toThrow(/no run line/);
  });

  it.each([
    [file('a'), file('a'), true],
    [file('a'), file('b'), false],
    [file('a', '644'), file('a', '600'), false],
    [file('a', '644', 0), file('a', '644', 33), false],
    [null, null, true],
    [null, file('a'), false],
    [{ kind: 'link' }, { kind: 'link' }, true],
    [{ kind: 'link' }, file('a'), false],
  ] as [PathState, PathState, boolean][])('sameState(%j, %j) = %s', (a, b, same) => {
    expect(sameState(a, b)).toBe(same);
  });

  it('a file flagged secret, or not readable by others before or after, is sensitive', () => {
    const k = { path: '/x', tasks: [1], sensitive: false, before: file('a', '644'), after: file('b', '644') };
    expect(isSensitive(k)).toBe(false);
    expect(isSensitive({ ...k, sensitive: true })).toBe(true);
    expect(isSensitive({ ...k, before: file('a', '640') })).toBe(true);
    expect(isSensitive({ ...k, before: null, after: file('a', '600') })).toBe(true);
    expect(describeState(file('abcdef', '644'))).toBe('sha256 abcdef000000, 0644 0:0');
    expect(describeState(null)).toBe('absent');
  });
});

describe('parseHistory', () => {
  const audit = (runId: string, start: string, changedTasks: string[]) =>
    JSON.stringify({ v: 2, runId, user: 'ops', controller: 'ctl', command: 'infra apply -i lab', mode: 'apply', result: 'changed', start, hosts: { web1: { changedTasks } } });

  it('joins kept runs and audit records, newest first; a pruned run shows from the audit copy', () => {
    const out = [
      '@@ aaaa0001 12',
      lines(header, { t: 'file', task: 1, path: '/etc/a', before: null, after: file('a') }, { t: 'task', task: 2, label: 'apt.packages nginx', module: 'apt.packages', notify: [], changes: [{ what: 'install nginx', to: '1.22' }] }).trimEnd(),
      '@@audit',
      audit('aaaa0001', '2026-11-30T21:00:00.000Z', ['x']),
      audit('bbbb0002', '2026-11-29T08:00:00.000Z', ['files.template /etc/old']),
      audit('cccc0003', '2026-11-29T09:00:00.000Z', []).replace('"web1"', '"web2"'), // another host's run
      '',
    ].join('\n');
    const h = parseHistory('web1', out);
    expect(h.keptKb).toBe(12);
    expect(h.runs.map((r) => [r.runId, r.keptKb, r.mode])).toEqual([
      ['aaaa0001', 12, 'apply'],
      ['bbbb0002', undefined, 'apply'],
    ]);
    expect(h.runs[0].files).toEqual([{ path: '/etc/a', how: 'created' }]);
    const text = formatHistory([{ host: 'web1', ...h }]);
    expect(text).toContain('web1: 2 run(s), 1 kept for rollback (12 kB)');
    expect(text).toContain('created  /etc/a');
    expect(text).toContain('\n      apt.packages nginx: install nginx → 1.22\n');
    expect(text).toMatch(/bbbb0002[^\n]*\n {6}changed  files.template \/etc\/old\n {6}\(its files are no longer kept/);
  });

  it('a host with neither runs nor audit copy has an empty history', () => {
    expect(parseHistory('web1', '@@audit\n')).toEqual({ runs: [], keptKb: 0 });
    expect(parseHistory('web1', '')).toEqual({ runs: [], keptKb: 0 });
  });
});

describe('retentionOf', () => {
  const inv = (vars: Record<string, unknown>) =>
    ({ hosts: new Map([['web1', { vars, provenance: new Map([['infra_keep_runs', [{ level: 'host', value: vars.infra_keep_runs, pos: { file: 'host_vars/web1.yaml', line: 3 } }]]]) }]]) }) as unknown as Inventory;

  it('defaults, inventory values, and a bad value as an input error with its file:line', () => {
    expect(retentionOf(inv({}), 'web1')).toEqual({ runs: 20, days: 30 });
    expect(retentionOf(inv({ infra_keep_runs: 3, infra_keep_days: 7 }), 'web1')).toEqual({ runs: 3, days: 7 });
    let err: unknown;
    try {
      retentionOf(inv({ infra_keep_runs: 0 }), 'web1');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).format()).toMatch(/^host_vars\/web1.yaml:3.*infra_keep_runs of web1 must be a positive integer/);
  });
});

describe('pruneKept', () => {
  const hosts = { find: () => ({ connected: true }) } as unknown as HostRuns;
  const retention = new Map([['web1', { runs: 20, days: 30 }], ['web2', { runs: 20, days: 30 }]]);

  it('prunes only where the run kept something: a no-op run sends nothing for retention', async () => {
    const keep = new RunKeeper('0123abcd', { command: 'infra apply', inventory: 'lab' });
    const sent: string[] = [];
    const runOn = (host: string) => async () => (sent.push(host), { code: 0, stdout: '0\n', stderr: '', stdoutBytes: Buffer.from('0\n') });
    await pruneKept(keep, hosts, runOn, retention);
    expect(sent).toEqual([]);
    await keep.host('web2').recordTask(runOn('record'), { task: 1, label: 'x', module: 'files.file', notify: [], changes: [] });
    await pruneKept(keep, hosts, runOn, retention);
    expect(sent).toEqual(['record', 'web2']);
  });
});
