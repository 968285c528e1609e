import { describe, expect, it } from 'vitest';
import { HostBoard } from '../../../src/report/board.js';
import { runEvents } from './events.fixture.js';

describe('HostBoard', () => {
  it('tracks the current task and counts per host', () => {
    const b = new HostBoard();
    const events = runEvents();
    const upTo = (type: string, host?: string) => events.findIndex((e) => e.type === type && (!host || ('host' in e && e.host === host)));
    events.slice(0, upTo('task.start', 'web1') + 1).forEach((e) => b.apply(e));
    expect(b.rows.get('web1')).toMatchObject({ phase: 'running', task: 'apt.packages nginx', ok: 0 });
    expect(b.rows.get('web22')).toMatchObject({ phase: 'unreachable', error: 'connect ECONNREFUSED 10.0.0.3:22' });
    expect(b.title('web1', false)).toBe('web1   0 ok  0 changed  0 failed  apt.packages nginx');

    events.slice(upTo('task.start', 'web1') + 1).forEach((e) => b.apply(e));
    expect(b.rows.get('db1')).toMatchObject({ phase: 'done', ok: 1, changed: 1, failed: 0 });
    expect(b.rows.get('web1')).toMatchObject({ phase: 'done', ok: 1, failed: 1, skipped: 1 });
    expect(b.rows.get('web22')?.phase).toBe('unreachable');
    expect(b.failedHosts().sort()).toEqual(['web1', 'web22']);
    expect(b.title('web1', false)).toBe('web1   1 ok  0 changed  1 failed  1 skipped  done');
  });

  it('keeps a failed host failed when later events arrive for it (handlers)', () => {
    const b = new HostBoard();
    b.apply({ type: 'host.failed', host: 'a', error: 'lock held by bob' });
    b.apply({ type: 'task.result', host: 'a', task: 'handler x', module: 'systemd.service', status: 'changed', changes: [], ms: 1, handler: true });
    expect(b.rows.get('a')).toMatchObject({ phase: 'failed', changed: 1 });
  });
});
