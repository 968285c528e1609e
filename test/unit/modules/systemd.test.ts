import { describe, expect, it } from 'vitest';
import { systemd } from '../../../src/modules/index.js';
import { decideService, parseShow, unitPath, type ServiceStatus } from '../../../src/modules/systemd.js';
import { fakeHost, withChanges } from './fake-host.js';

const status = (s: Partial<ServiceStatus>): ServiceStatus => ({
  loadState: 'loaded',
  activeState: 'inactive',
  subState: 'dead',
  unitFileState: 'disabled',
  needDaemonReload: false,
  ...s,
});
const params = (v: Record<string, unknown>) => systemd.service.module.params.parse({ name: 'nginx', ...v });

describe('parseShow', () => {
  it('reads systemctl show key=value lines', () => {
    expect(parseShow('LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nNeedDaemonReload=yes\n')).toEqual({
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      unitFileState: 'enabled',
      needDaemonReload: true,
    });
  });
});

describe('decideService', () => {
  it.each([
    ['started + enabled, already so', { state: 'started', enabled: true }, { activeState: 'active', unitFileState: 'enabled' }, []],
    ['start', { state: 'started' }, {}, ['start']],
    ['enable + start', { state: 'started', enabled: true }, {}, ['enable', 'start']],
    ['static unit counts as enabled', { enabled: true }, { unitFileState: 'static' }, []],
    ['stop + disable', { state: 'stopped', enabled: false }, { activeState: 'active', unitFileState: 'enabled' }, ['disable', 'stop']],
    ['failed counts as stopped', { state: 'stopped' }, { activeState: 'failed' }, []],
    ['restarted always acts', { state: 'restarted' }, { activeState: 'active' }, ['restart']],
    ['reloaded on a stopped unit starts it', { state: 'reloaded' }, {}, ['start']],
    ['starting counts as started', { state: 'started' }, { activeState: 'activating', subState: 'start' }, []],
    ['crash-looping (auto-restart) is not started: restarted now', { state: 'started' }, { activeState: 'activating', subState: 'auto-restart' }, ['restart']],
    ['crash-looping is stopped when stopped is asked', { state: 'stopped' }, { activeState: 'activating', subState: 'auto-restart' }, ['stop']],
    ['crash-looping is restarted, not reloaded', { state: 'reloaded' }, { activeState: 'activating', subState: 'auto-restart' }, ['restart']],
    ['changed unit on disk → daemon-reload', { state: 'started' }, { activeState: 'active', needDaemonReload: true }, ['daemon-reload']],
  ])('%s', (_n, p, s, whats) => {
    const c = decideService(params(p), status(s), false);
    expect(c.changes.map((x) => x.what)).toEqual(whats);
    if (whats.length === 0) expect(c.reason).toBeTruthy();
  });

  it('restarted/reloaded are marked always', () => {
    expect(decideService(params({ state: 'restarted' }), status({ activeState: 'active' }), false).always).toBe(true);
    expect(decideService(params({ state: 'started' }), status({}), false).always).toBeUndefined();
  });

  it('a missing unit fails, except in check mode (an earlier task may install it)', () => {
    expect(() => decideService(params({ state: 'started' }), status({ loadState: 'not-found' }), false)).toThrow(/not found/);
    expect(decideService(params({ state: 'started' }), status({ loadState: 'not-found' }), true).changes).toHaveLength(1);
  });

  it('service diff says before → after', () => {
    const c = decideService(params({ state: 'started' }), status({}), false);
    expect(c.diff).toEqual([{ kind: 'service', name: 'nginx.service', before: 'inactive', after: 'active' }]);
    const looping = decideService(params({ state: 'started' }), status({ activeState: 'activating', subState: 'auto-restart' }), false);
    expect(looping.diff).toEqual([{ kind: 'service', name: 'nginx.service', before: 'activating (auto-restart)', after: 'active' }]);
  });
});

describe('systemd tasks', () => {
  it('restart()/reload() are handler tasks', () => {
    const t = systemd.restart('redis-server');
    expect(t.module.name).toBe('systemd.service');
    expect(t.params).toEqual({ name: 'redis-server', state: 'restarted' });
    expect(t.name).toBe('restart redis-server');
    expect(systemd.reload('nginx').params).toEqual({ name: 'nginx', state: 'reloaded' });
  });

  it('factory keeps "name" as the unit (not the task label)', () => {
    expect(systemd.service({ name: 'nginx', state: 'started' }).params).toEqual({ name: 'nginx', state: 'started' });
  });

  it.each([
    [{ name: 'nginx' }, '/etc/systemd/system/nginx.service'],
    [{ name: 'app.socket' }, '/etc/systemd/system/app.socket'],
    [{ name: 'nginx', dropIn: 'limits' }, '/etc/systemd/system/nginx.service.d/limits.conf'],
  ])('unit path %j', (p, path) => {
    const parsed = systemd.unit.module.params.parse({ ...p, content: 'x' });
    expect(unitPath(parsed)).toBe(path);
  });

  it('unit: unchanged file but pending daemon-reload still reloads', async () => {
    const content = '[Service]\nExecStart=/bin/true\n';
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(content).digest('hex');
    const probe = `file 644 root root 0 0 ${content.length}\n${sha}\n`;
    const host = fakeHost([{ stdout: `@@infra-unit@@file\n${probe}@@infra-unit@@show\nNeedDaemonReload=yes\n` }, {}]);
    const p = systemd.unit.module.params.parse({ name: 'app', content });
    const c = await systemd.unit.module.check(host, p);
    expect(c.changes).toEqual([{ what: 'daemon-reload' }]);
    await systemd.unit.module.apply(host, p, withChanges(c));
    expect(host.commands[1]).toBe('systemctl daemon-reload');
    expect(host.puts).toEqual([]);
  });

  it('service check is one systemctl show', async () => {
    const host = fakeHost([{ stdout: 'LoadState=loaded\nActiveState=active\nUnitFileState=enabled\nNeedDaemonReload=no\n' }]);
    const c = await systemd.service.module.check(host, params({ state: 'started', enabled: true }));
    expect(host.commands).toEqual(['systemctl show -p LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload -- nginx.service']);
    expect(c.changes).toEqual([]);
  });

  it('a failed unit (a start limit hit while it crash-looped unconfigured) is reset before its start or restart; a running one is not', async () => {
    const show = (active: string) => ({ stdout: `LoadState=loaded\nActiveState=${active}\nUnitFileState=enabled\nNeedDaemonReload=no\n` });
    for (const state of ['started', 'restarted'] as const) {
      const host = fakeHost([show('failed'), {}, {}]);
      const c = await systemd.service.module.check(host, params({ state }));
      await systemd.service.module.apply(host, params({ state }), withChanges(c));
      expect(host.commands.slice(1)).toEqual(['systemctl reset-failed -- nginx.service', `systemctl ${state === 'started' ? 'start' : 'restart'} -- nginx.service`]);
    }
    const host = fakeHost([show('active'), {}]);
    const c = await systemd.service.module.check(host, params({ state: 'restarted' }));
    await systemd.service.module.apply(host, params({ state: 'restarted' }), withChanges(c));
    expect(host.commands.slice(1)).toEqual(['systemctl restart -- nginx.service']);
  });
});
