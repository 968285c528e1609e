/**
 * systemd.*: service state (enabled, started/stopped, restarted/reloaded for handlers) read
 * with one `systemctl show`, and unit files / drop-ins followed by a daemon-reload.
 */
import { z } from 'zod';
import { sh } from '../shell/quote.js';
import { parseProbe, probeCommand, sha256, type FileState } from './file-state.js';
import { applyFile, planFile, type DesiredFile, type FilePlan } from './file-plan.js';
import { readChecked, runChecked, splitSections, commandFailed } from './run-checked.js';
import { renderTemplate } from './whole-file.js';
import { defineModule, makeTask, nonEmpty, unchanged, type Change, type Check, type Diff, type HostContext, type Task } from './types.js';

const unitName = z
  .string()
  .regex(/^[A-Za-z0-9:_.\\@-]+$/, 'a unit name such as "nginx" or "nginx.service"')
  .transform((n) => (/\.(service|socket|timer|target|mount|path|slice|scope|automount|swap|device)$/.test(n) ? n : `${n}.service`));

export interface ServiceStatus {
  loadState: string;
  activeState: string;
  /** 'auto-restart' with activeState 'activating': the process died and systemd waits to start it again. */
  subState: string;
  unitFileState: string;
  needDaemonReload: boolean;
}

export const SHOW_PROPS = 'LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload';

/** Output of `systemctl show -p LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload UNIT`. */
export function parseShow(stdout: string): ServiceStatus {
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return {
    loadState: kv.get('LoadState') ?? 'not-found',
    activeState: kv.get('ActiveState') ?? 'inactive',
    subState: kv.get('SubState') ?? '',
    unitFileState: kv.get('UnitFileState') ?? '',
    needDaemonReload: kv.get('NeedDaemonReload') === 'yes',
  };
}

/** Unit file states that already satisfy enabled: true (static units cannot be enabled). */
const ENABLED_OK = new Set(['enabled', 'static', 'generated', 'alias', 'indirect', 'linked']);
const RUNNING = new Set(['active', 'reloading', 'activating']);

// ---------------------------------------------------------------- systemd.service

const serviceParams = z
  .object({
    name: unitName,
    enabled: z.boolean().optional(),
    /** restarted / reloaded act on every run: they are for handlers. */
    state: z.enum(['started', 'stopped', 'restarted', 'reloaded']).optional(),
    /** Force a daemon-reload first (one happens anyway when systemd says a unit changed). */
    daemonReload: z.boolean().default(false),
  })
  .strict();
export type ServiceParams = z.infer<typeof serviceParams>;

interface ServiceData {
  daemonReload: boolean;
  enable?: boolean;
  action?: 'start' | 'stop' | 'restart' | 'reload';
  /** The unit failed (often: its start limit, hit by a crash loop before it was configured): cleared before starting it. */
  resetFailed?: boolean;
}

/** The decision, pure. */
export function decideService(p: ServiceParams, s: ServiceStatus, checkMode: boolean): Check<ServiceData> {
  const changes: Change[] = [];
  const diff: Diff[] = [];
  const data: ServiceData = { daemonReload: p.daemonReload || s.needDaemonReload };
  if (s.loadState === 'not-found' && !checkMode) throw new Error(`unit ${p.name} not found`);
  if (s.loadState === 'masked' && (p.state === 'started' || p.enabled)) throw new Error(`unit ${p.name} is masked`);
  if (data.daemonReload) changes.push({ what: 'daemon-reload', from: s.needDaemonReload ? 'unit changed on disk' : 'requested' });
  if (p.enabled !== undefined) {
    const isEnabled = ENABLED_OK.has(s.unitFileState);
    const ok = p.enabled ? isEnabled : s.unitFileState !== 'enabled';
    if (!ok) {
      data.enable = p.enabled;
      const to = p.enabled ? 'enabled' : 'disabled';
      changes.push({ what: p.enabled ? 'enable' : 'disable', from: s.unitFileState || 'unknown', to });
      diff.push({ kind: 'service', name: `${p.name} (boot)`, before: s.unitFileState || 'unknown', after: to });
    }
  }
  // A crash loop between two attempts is 'activating' too: not running. systemd makes a start wait
  // for the pending automatic one (and says nothing of how it ends); a restart goes now.
  const crashLooping = s.activeState === 'activating' && s.subState === 'auto-restart';
  const running = RUNNING.has(s.activeState) && !crashLooping;
  const before = crashLooping ? 'activating (auto-restart)' : s.activeState;
  if (p.state === 'started' && !running) data.action = crashLooping ? 'restart' : 'start';
  if (p.state === 'stopped' && (running || crashLooping)) data.action = 'stop';
  if (p.state === 'restarted') data.action = 'restart';
  if (p.state === 'reloaded') data.action = running ? 'reload' : crashLooping ? 'restart' : 'start';
  if (s.activeState === 'failed' && (data.action === 'start' || data.action === 'restart')) data.resetFailed = true;
  if (data.action) {
    const after = data.action === 'stop' ? 'inactive' : 'active';
    changes.push({ what: data.action, from: before, to: after });
    diff.push({ kind: 'service', name: p.name, before, after });
  }
  const always = p.state === 'restarted' || p.state === 'reloaded';
  if (!nonEmpty(changes)) {
    const boot = p.enabled === undefined ? '' : `, ${s.unitFileState}`;
    return unchanged(`${p.name} is ${s.activeState}${boot}`);
  }
  return { changes, diff, data, always: always || undefined };
}

export const service = defineModule<ServiceParams, z.input<typeof serviceParams>, ServiceData>({
  name: 'systemd.service',
  batchReads: () => true,
  params: serviceParams,
  describe: (p) => `${p.name}${p.state ? ` ${p.state}` : ''}${p.enabled === undefined ? '' : p.enabled ? ' enabled' : ' disabled'}`,
  async check(host, p) {
    const r = await readChecked(host, sh`systemctl show -p ${SHOW_PROPS} -- ${p.name}`, `systemctl show ${p.name}`);
    return decideService(p, parseShow(r.stdout), host.checkMode);
  },
  async apply(host, p, c) {
    const d = c.data;
    if (d.daemonReload) await runChecked(host, 'systemctl daemon-reload', 'systemctl daemon-reload');
    if (d.enable !== undefined) {
      await runChecked(host, sh`systemctl ${d.enable ? 'enable' : 'disable'} -- ${p.name}`, `${d.enable ? 'enable' : 'disable'} ${p.name}`);
    }
    // A start limit hit earlier would refuse the start the configuration asks for (`systemctl` says
    // "start request repeated too quickly"); the operator's remedy is reset-failed, so is ours.
    if (d.resetFailed) await runChecked(host, sh`systemctl reset-failed -- ${p.name}`, `systemctl reset-failed ${p.name}`);
    if (d.action) await systemctlWithJournal(host, d.action, p.name);
  },
});

/** start/stop/...: on failure, the error carries the unit's last journal lines. */
async function systemctlWithJournal(host: HostContext, action: string, name: string): Promise<void> {
  const r = await host.run(sh`systemctl ${action} -- ${name}`);
  if (r.code === 0) return;
  const j = await host.run(sh`journalctl -u ${name} -n 15 --no-pager -o cat`);
  const err = commandFailed(`systemctl ${action} ${name}`, r);
  if (j.code === 0 && j.stdout.trim()) err.message += `\n--- journal ${name} ---\n${j.stdout.trimEnd()}`;
  throw err;
}

/** Handler tasks: `handlers: { 'restart nginx': systemd.restart('nginx') }`. */
export function restart(name: string): Task<ServiceParams> {
  return makeTask(service.module, { name, state: 'restarted' }, { name: `restart ${name}` });
}
export function reload(name: string): Task<ServiceParams> {
  return makeTask(service.module, { name, state: 'reloaded' }, { name: `reload ${name}` });
}

// ---------------------------------------------------------------- systemd.unit

const unitParams = z
  .object({
    name: unitName,
    content: z.string().optional(),
    /** A template of the role: templates/<src>. */
    src: z.string().min(1).optional(),
    vars: z.record(z.unknown()).optional(),
    /** Write /etc/systemd/system/<name>.d/<dropIn>.conf instead of the unit itself. */
    dropIn: z.string().regex(/^[A-Za-z0-9_.@-]+$/, 'a file name without ".conf"').optional(),
    state: z.enum(['present', 'absent']).default('present'),
  })
  .strict()
  .refine((p) => p.state === 'absent' || [p.content, p.src].filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of content or src',
  });
export type UnitParams = z.infer<typeof unitParams>;

export const unitPath = (p: { name: string; dropIn?: string }): string =>
  p.dropIn ? `/etc/systemd/system/${p.name}.d/${p.dropIn.replace(/\.conf$/, '')}.conf` : `/etc/systemd/system/${p.name}`;

const MARK = '@@infra-unit@@';

interface UnitData {
  file?: { want: DesiredFile; state: FileState; plan: FilePlan };
  remove?: string;
  daemonReload: boolean;
}

export const unit = defineModule<UnitParams, z.input<typeof unitParams>, UnitData>({
  name: 'systemd.unit',
  batchReads: () => true,
  params: unitParams,
  describe: (p) => unitPath(p),
  async check(host, p) {
    const path = unitPath(p);
    let content: Buffer | undefined;
    if (p.state === 'present') {
      const text = p.content ?? (await renderTemplate(host, p.src as string, p.vars));
      content = Buffer.from(text, 'utf8');
    }
    const script = [
      `echo ${MARK}file`,
      probeCommand(path, content ? { unlessSha: sha256(content) } : 'never'),
      `echo ${MARK}show`,
      sh`systemctl show -p NeedDaemonReload -- ${p.name} 2>/dev/null`,
      'exit 0',
    ].join('\n');
    const r = await readChecked(host, script, `read ${path}`);
    const s = splitSections(r.stdout, MARK);
    const state = parseProbe(s.get('file') ?? '');
    // A unit written by an earlier run that failed before its daemon-reload still needs one.
    const pending = parseShow(s.get('show') ?? '').needDaemonReload;
    const changes: Change[] = [];
    const data: UnitData = { daemonReload: false };
    let diff: Diff[] | undefined;
    if (p.state === 'absent') {
      if (state.kind !== 'absent') {
        changes.push({ what: 'remove', from: path });
        data.remove = path;
      }
    } else {
      const want: DesiredFile = { path, content: content as Buffer, mode: '0644', owner: 'root', group: 'root' };
      const plan = planFile(want, state);
      changes.push(...plan.changes);
      if (plan.diff) diff = [plan.diff];
      if (plan.changes.length) data.file = { want, state, plan };
    }
    if (changes.length > 0 || pending) {
      data.daemonReload = true;
      changes.push({ what: 'daemon-reload' });
    }
    if (!nonEmpty(changes)) return unchanged(`${path} is up to date`);
    return { changes, diff, data };
  },
  async apply(host, p, c) {
    const d = c.data;
    if (d.remove) await host.remove(d.remove);
    if (d.file) {
      if (p.dropIn) await runChecked(host, sh`mkdir -p -- ${`/etc/systemd/system/${p.name}.d`}`, 'create drop-in directory');
      await applyFile(host, d.file.want, d.file.state, d.file.plan);
    }
    if (d.daemonReload) await runChecked(host, 'systemctl daemon-reload', 'systemctl daemon-reload');
  },
});

/**
 * A job systemd runs on a schedule, for roles: `<name>.service` (oneshot, low CPU and I/O
 * priority) and `<name>.timer` (persistent, randomized delay) from the shared templates, the
 * timer enabled and started.
 */
export function scheduledJob(j: { name: string; description: string; exec: string; schedule: string; randomDelay: string }): Task[] {
  return [
    unit({ name: `${j.name}.service`, src: 'oneshot.service.hbs', vars: { description: j.description, exec: j.exec } }),
    unit({ name: `${j.name}.timer`, src: 'timer.hbs', vars: { description: `${j.description}: ${j.schedule}`, calendar: j.schedule, delay: j.randomDelay } }),
    service({ name: `${j.name}.timer`, enabled: true, state: 'started' }),
  ];
}
