/**
 * Executor semantics with an in-memory host: check mode never applies, handlers run once at
 * the end of a play and survive a later failure, serial + maxFailPercentage stop a rollout,
 * unreachable hosts are results, plan fingerprints detect drift.
 */
import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import { execute, type ExecutorDeps, type ExecuteOptions } from '../../../src/engine/executor.js';
import { batchHosts } from '../../../src/engine/batches.js';
import { defineModule, makeTask, type Module, type Task } from '../../../src/modules/types.js';
import { flushHandlers } from '../../../src/modules/meta.js';
import type { Transport } from '../../../src/transport/types.js';
import { HostUnreachable, HostRefused, emptyCounters } from '../../../src/transport/types.js';
import { Secret } from '../../../src/secrets/secret.js';
import { randomBytes } from 'node:crypto';
import type { Inventory, HostSpec } from '../../../src/inventory/types.js';
import type { RunEvent } from '../../../src/report/events.js';
import type { PreparedPlay, BoundTask, PlanFile } from '../../../src/engine/types.js';
import { RunControl } from '../../../src/engine/control.js';
import type { Facts } from '../../../src/facts/types.js';

/** A "key=value" store per host, changed only by apply(). */
const state = new Map<string, Map<string, string>>();
const applied: string[] = [];
const setKey = defineModule<{ key: string; value: string; fail?: boolean }>({
  name: 'test.set',
  params: z.object({ key: z.string(), value: z.string(), fail: z.boolean().optional() }),
  describe: (p) => p.key,
  async check(host, p) {
    if (p.fail) throw new Error(`boom on ${host.name}`);
    const cur = state.get(host.name)?.get(p.key);
    return cur === p.value ? { changes: [], reason: 'already set' } : { changes: [{ what: `set ${p.key}`, from: cur, to: p.value }] };
  },
  async apply(host, p) {
    applied.push(`${host.name}:${p.key}`);
    if (!state.has(host.name)) state.set(host.name, new Map());
    state.get(host.name)!.set(p.key, p.value);
  },
});

/** A handler that acts whenever it runs (a reload). */
const always = defineModule<{ key: string }>({
  name: 'test.always',
  params: z.object({ key: z.string() }),
  describe: (p) => p.key,
  check: async (_h, p) => ({ changes: [{ what: p.key }], always: true }),
  async apply(host, p) {
    applied.push(`${host.name}:${p.key}`);
  },
});

/** A test module whose params are { k } (described by k): only check/apply differ. */
function kModule(m: Pick<Module<{ k: string }>, 'name' | 'check' | 'apply'>) {
  return defineModule<{ k: string }>({ params: z.object({ k: z.string() }), describe: (p) => p.k, ...m });
}

const facts = { hostname: 'x', os: { id: 'debian' }, container: 'docker' } as unknown as Facts;

function inventory(names: string[]): Inventory {
  const hosts = new Map<string, HostSpec>(
    names.map((n) => [n, { name: n, conn: { connection: 'ssh', address: n, port: 22, user: 'admin', become: false }, groups: ['all'], vars: {}, provenance: new Map() }]),
  );
  return { env: 'test', dir: '/tmp', hosts, groups: new Map([['all', { name: 'all', children: [], hosts: [], vars: {} }]]), knownHostsPath: '/tmp/kh' };
}

/** Per host: pending-handler files (owner → JSON), as the engine's shell commands leave them. */
const pendingFiles = new Map<string, Map<string, string>>();

/** Answers the pending-handlers store's commands (handlers.ts) like a host would; undefined for any other command. */
function pendingStore(host: string, cmd: string, stdin?: string | Buffer): string | undefined {
  if (!cmd.includes('pending-handlers')) return undefined;
  const files = pendingFiles.get(host) ?? new Map<string, string>();
  pendingFiles.set(host, files);
  if (cmd.includes('for f in')) return [...files.values()].map((j) => j + '\n').join('');
  const owner = /"\$d"\/'?([^'\s]+)\.json/.exec(cmd)![1];
  if (cmd.includes('rm -f')) files.delete(owner);
  else files.set(owner, String(stdin).trim());
  return '';
}

function deps(names: string[], opts: { unreachable?: string[]; dropAfter?: Record<string, number> } = {}) {
  const events: RunEvent[] = [];
  const commands = new Map<string, number>();
  const transport = (host: string): Transport => ({
    host,
    counters: emptyCounters(),
    async connect() {
      if (opts.unreachable?.includes(host)) throw new HostUnreachable(host, 'connect timeout');
    },
    async run(cmd, o) {
      const stored = pendingStore(host, cmd, o?.stdin);
      if (stored !== undefined) return { code: 0, stdout: stored, stderr: '', stdoutBytes: Buffer.from(stored) };
      const n = (commands.get(host) ?? 0) + 1;
      commands.set(host, n);
      if (opts.dropAfter?.[host] !== undefined && n > opts.dropAfter[host]) throw new HostUnreachable(host, 'connection lost');
      return { code: 0, stdout: '', stderr: '', stdoutBytes: Buffer.alloc(0) };
    },
    async put() {},
    async remove() {},
    async get() {
      return null;
    },
    async lock() {},
    async close() {},
    async abort() {},
  });
  const d: ExecutorDeps = {
    inventory: inventory(names),
    transports: { get: transport, open: transport, counters: () => ({}) },
    reporter: { emit: (e) => events.push(e), close: async () => {} },
    gatherFacts: async (run) => {
      await run('facts');
      return facts;
    },
    renderFile: async () => '',
    readRoleFile: async () => Buffer.alloc(0),
    hostsMatching: () => names,
  };
  return { d, events };
}

function play(hosts: string[], tasks: Task[], handlers: Record<string, Task> = {}, extra: Partial<PreparedPlay> = {}): PreparedPlay {
  const bind = (t: Task): BoundTask => ({ task: t, vars: {} });
  return {
    index: 0,
    name: 'p',
    hosts,
    batches: [hosts],
    anyErrorsFatal: false,
    byHost: new Map(hosts.map((h) => [h, { tasks: () => tasks.map(bind), handlers: new Map(Object.entries(handlers).map(([k, v]) => [k, bind(v)])) }])),
    ...extra,
  };
}

const base = (plays: PreparedPlay[], o: Partial<ExecuteOptions> = {}): ExecuteOptions => ({
  runId: 'r1',
  plays,
  checkMode: false,
  verify: true,
  forks: 10,
  control: new RunControl(),
  ...o,
});

function reset() {
  state.clear();
  applied.length = 0;
  pendingFiles.clear();
}

const planOf = (hosts: PlanFile['hosts'], key: Buffer): PlanFile => ({
  version: 2,
  createdAt: '',
  runId: 'r',
  fingerprintKey: key.toString('hex'),
  args: { inventory: '/x', inventoryName: 'x', playbook: 'y', extraVars: [] },
  hosts,
});

/** setKey reading the store through host.cached: the reads that reach the "host" are counted. */
let storeReads = 0;
const cachedSet = defineModule<{ key: string; value: string }>({
  name: 'test.cachedSet',
  params: z.object({ key: z.string(), value: z.string() }),
  describe: (p) => p.key,
  async check(host, p) {
    const store = await host.cached!('store', async () => {
      storeReads++;
      return new Map(state.get(host.name));
    });
    const cur = store.get(p.key);
    return cur === p.value ? { changes: [], reason: 'already set' } : { changes: [{ what: `set ${p.key}`, from: cur, to: p.value }] };
  },
  apply: setKey.module.apply,
});

describe('executor', () => {
  it("tasks share a host's cached read until one of them applies (then they see the new state)", async () => {
    reset();
    const tasks = () => [
      cachedSet({ key: 'a', value: '1' }),
      cachedSet({ key: 'b', value: '2' }),
      cachedSet({ key: 'b', value: '2' }),
      cachedSet({ key: 'a', value: '1' }),
    ];
    state.set('h1', new Map([['a', '1']]));
    const { d } = deps(['h1']);
    storeReads = 0;
    const checked = await execute(d, base([play(['h1'], tasks())], { checkMode: true }));
    expect([storeReads, checked.recap[0].changed]).toEqual([1, 2]); // both b tasks would change: nothing applied
    storeReads = 0;
    const r = await execute(d, base([play(['h1'], tasks())]));
    // Read once; b applied, so its verify reads again; the last two tasks use that read and see b set.
    expect([storeReads, applied, r.recap[0].changed, r.recap[0].ok]).toEqual([2, ['h1:b'], 1, 3]);
  });

  it('applies, then a second run changes nothing', async () => {
    reset();
    const tasks = [setKey({ key: 'a', value: '1' }), setKey({ key: 'b', value: '2' })];
    const { d } = deps(['h1', 'h2']);
    const first = await execute(d, base([play(['h1', 'h2'], tasks)]));
    expect(first.recap.map((r) => r.changed)).toEqual([2, 2]);
    const second = await execute(d, base([play(['h1', 'h2'], tasks)]));
    expect(second.recap.map((r) => [r.changed, r.ok])).toEqual([[0, 2], [0, 2]]);
    expect(second.anyChanges).toBe(false);
  });

  it('check mode reports changes and never calls apply', async () => {
    reset();
    const { d, events } = deps(['h1']);
    const r = await execute(d, base([play(['h1'], [setKey({ key: 'a', value: '1' })])], { checkMode: true }));
    expect(applied).toEqual([]);
    expect(r.anyChanges).toBe(true);
    const result = events.find((e) => e.type === 'task.result');
    expect(result).toMatchObject({ status: 'changed', changes: [{ what: 'set a', to: '1' }] });
  });

  it('runs a notified handler once at the end of the play, even after a later task failed', async () => {
    reset();
    const handler = setKey({ key: 'restarted', value: 'yes' });
    const tasks = [
      setKey({ key: 'conf1', value: 'x', notify: 'restart' }),
      setKey({ key: 'conf2', value: 'y', notify: 'restart' }),
      setKey({ key: 'bad', value: 'z', fail: true }),
      setKey({ key: 'never', value: 'n' }),
    ];
    const { d } = deps(['h1']);
    const r = await execute(d, base([play(['h1'], tasks, { restart: handler })]));
    expect(applied).toEqual(['h1:conf1', 'h1:conf2', 'h1:restarted']);
    expect(r.recap[0]).toMatchObject({ changed: 3, failed: 1 });
    expect(r.anyFailed).toBe(true);
  });

  it('meta.flushHandlers runs what was notified so far right there; later notifications run at the end', async () => {
    reset();
    const tasks = [
      setKey({ key: 'site', value: 'x', notify: 'reload' }),
      flushHandlers({}),
      setKey({ key: 'deploy', value: 'y', notify: 'reload' }),
    ];
    const { d } = deps(['h1']);
    await execute(d, base([play(['h1'], tasks, { reload: makeTask(always.module, { key: 'reloaded' }) })]));
    expect(applied).toEqual(['h1:site', 'h1:reloaded', 'h1:deploy', 'h1:reloaded']);
  });

  it('a handler failing at meta.flushHandlers stops the host there', async () => {
    reset();
    const tasks = [setKey({ key: 'site', value: 'x', notify: 'reload' }), flushHandlers({}), setKey({ key: 'deploy', value: 'y' })];
    const { d } = deps(['h1']);
    const r = await execute(d, base([play(['h1'], tasks, { reload: setKey({ key: 'r', value: '1', fail: true }) })]));
    expect(applied).toEqual(['h1:site']);
    expect(r.anyFailed).toBe(true);
  });

  it('onHost: a task acts on another inventory host, which joins the run once (connected, in the recap)', async () => {
    reset();
    const remote = defineModule<{ on: string; key: string }>({
      name: 'test.remote',
      params: z.object({ on: z.string(), key: z.string() }),
      describe: (p) => p.key,
      async check() {
        return { changes: [{ what: 'set elsewhere' }] };
      },
      async apply(host, p) {
        const other = await host.onHost!(p.on);
        applied.push(`${host.name}→${other.name}:${p.key}`);
      },
    });
    const { d, events } = deps(['h1', 'h2', 'lb']);
    const r = await execute(d, base([play(['h1', 'h2'], [remote({ on: 'lb', key: 'drain' })])], { verify: false }));
    expect(applied.sort()).toEqual(['h1→lb:drain', 'h2→lb:drain']);
    expect(events.filter((e) => e.type === 'host.connected' && e.host === 'lb')).toHaveLength(1);
    expect(r.recap.map((x) => x.host).sort()).toEqual(['h1', 'h2', 'lb']);
    const bad = await execute(d, base([play(['h1'], [remote({ on: 'nowhere', key: 'x' })])], { verify: false }));
    expect(bad.anyFailed).toBe(true);
  });

  it('does not run handlers nobody notified', async () => {
    reset();
    state.set('h1', new Map([['conf', 'x']]));
    const { d } = deps(['h1']);
    await execute(d, base([play(['h1'], [setKey({ key: 'conf', value: 'x', notify: 'restart' })], { restart: setKey({ key: 'r', value: '1' }) })]));
    expect(applied).toEqual([]);
  });

  it('an unreachable host is a result; the others finish', async () => {
    reset();
    const { d, events } = deps(['h1', 'h2', 'h3'], { unreachable: ['h2'] });
    const r = await execute(d, base([play(['h1', 'h2', 'h3'], [setKey({ key: 'a', value: '1' })])]));
    expect(r.recap.find((x) => x.host === 'h2')).toMatchObject({ unreachable: true, changed: 0 });
    expect(r.recap.filter((x) => x.changed === 1).map((x) => x.host).sort()).toEqual(['h1', 'h3']);
    expect(events.some((e) => e.type === 'host.unreachable' && e.host === 'h2')).toBe(true);
  });

  it('a connection lost mid-task fails that task with "state unknown" and marks the host unreachable', async () => {
    reset();
    const lossy = kModule({
      name: 'test.remote',
      async check(host) {
        await host.run('probe');
        return { changes: [{ what: 'x' }] };
      },
      async apply() {},
    });
    const { d, events } = deps(['h1', 'h2'], { dropAfter: { h1: 2 } });
    const r = await execute(d, base([play(['h1', 'h2'], [lossy({ k: 'a' }), lossy({ k: 'b' }), lossy({ k: 'c' })])], { verify: false }));
    const h1 = r.recap.find((x) => x.host === 'h1')!;
    expect(h1.unreachable).toBe(true);
    expect(events.find((e) => e.type === 'task.result' && e.host === 'h1' && e.status === 'failed')).toMatchObject({ error: 'connection lost: state unknown' });
    expect(r.recap.find((x) => x.host === 'h2')).toMatchObject({ changed: 3, unreachable: false });
  });

  it('serial + maxFailPercentage stop the rollout after a failing batch', async () => {
    reset();
    const hosts = ['h1', 'h2', 'h3', 'h4'];
    const { d } = deps(hosts, { unreachable: ['h1'] });
    const p = play(hosts, [setKey({ key: 'a', value: '1' })], {}, { batches: batchHosts(hosts, [2]), maxFailPercentage: 0 });
    const r = await execute(d, base([p]));
    expect(r.aborted).toBe(true);
    expect(applied).toEqual(['h2:a']);
  });

  it('anyErrorsFatal stops every later batch and play', async () => {
    reset();
    const hosts = ['h1', 'h2'];
    const { d } = deps(hosts);
    const p1 = play(hosts, [setKey({ key: 'bad', value: '1', fail: true })], {}, { batches: [['h1'], ['h2']], anyErrorsFatal: true });
    const p2 = { ...play(hosts, [setKey({ key: 'later', value: '1' })]), index: 1 };
    const r = await execute(d, base([p1, p2]));
    expect(r.aborted).toBe(true);
    expect(applied).toEqual([]);
  });

  it('Ctrl-C once: no new task starts, pending handlers still run', async () => {
    reset();
    const control = new RunControl();
    const first = kModule({
      name: 'test.stopper',
      async check() {
        return control.stopping ? { changes: [], reason: 'done' } : { changes: [{ what: 'x' }] };
      },
      async apply() {
        control.stop(); // the user presses Ctrl-C while this task runs
      },
    });
    const { d } = deps(['h1']);
    await execute(d, base([play(['h1'], [first({ k: 'a', notify: 'h' }), setKey({ key: 'after', value: '1' })], { h: setKey({ key: 'handler', value: '1' }) })], { control }));
    expect(applied).toEqual(['h1:handler']);
  });

  it('records a plan and refuses a host that drifted since', async () => {
    reset();
    const tasks = [setKey({ key: 'a', value: '1' })];
    const { d } = deps(['h1', 'h2']);
    const key = randomBytes(32);
    const planned = await execute(d, base([play(['h1', 'h2'], tasks)], { checkMode: true, recordPlan: { key } }));
    expect(planned.plan.h1['0']).toHaveLength(1);
    // Someone changes h2 by hand after the plan was made.
    state.set('h2', new Map([['a', 'manual']]));
    const plan = planOf(planned.plan, key);
    const { d: d2, events } = deps(['h1', 'h2']);
    const r = await execute(d2, base([play(['h1', 'h2'], tasks)], { expectedPlan: plan }));
    expect(applied).toEqual(['h1:a']);
    expect(events.find((e) => e.type === 'host.failed' && e.host === 'h2')).toMatchObject({ error: 'drifted since plan: test.set a' });
    expect(r.anyFailed).toBe(true);
  });

  it('fails a task that does not converge (check after apply still sees changes)', async () => {
    reset();
    const liar = kModule({
      name: 'test.liar',
      async check() {
        return { changes: [{ what: 'set k' }] };
      },
      async apply() {},
    });
    const { d, events } = deps(['h1']);
    await execute(d, base([play(['h1'], [liar({ k: 'a' })])]));
    expect(events.find((e) => e.type === 'task.result')).toMatchObject({ status: 'failed', error: 'did not converge: still set k' });
  });

  it('tags select tasks; handlers are not filtered', async () => {
    reset();
    const t = (key: string, tags: string[]) => makeTask(setKey.module, { key, value: '1' }, { tags });
    const { d } = deps(['h1']);
    await execute(d, base([play(['h1'], [t('web', ['web']), t('db', ['db'])])], { tags: ['db'] }));
    expect(applied).toEqual(['h1:db']);
  });
});

describe('executor: issue 10 regressions', () => {
  it('render with task vars keeps the standard template data (groups, host, facts) and merges vars over it', async () => {
    reset();
    const seen: Record<string, unknown>[] = [];
    const renders = kModule({
      name: 'test.render',
      async check(host) {
        await host.render('t.hbs', { vars: { extra: 'x', base: 'overridden' } });
        return { changes: [], reason: 'rendered' };
      },
      async apply() {},
    });
    const { d } = deps(['h1', 'h2']);
    d.renderFile = async (_dir, _src, data) => {
      seen.push(data);
      return '';
    };
    const p = play(['h1'], [renders({ k: 'a' })]);
    p.byHost.get('h1')!.tasks = () => [{ task: renders({ k: 'a' }), roleDir: '/r', vars: { base: 'b', other: 'o' } }];
    await execute(d, base([p]));
    expect(seen).toHaveLength(1);
    expect(seen[0].vars).toEqual({ base: 'overridden', other: 'o', extra: 'x' });
    expect((seen[0].groups as Record<string, unknown[]>).all.map((h) => (h as { name: string }).name)).toEqual(['h1', 'h2']);
    expect(seen[0].host).toMatchObject({ name: 'h1' });
    expect(seen[0].facts).toBe(facts);
  });

  it("each host's recap time is its own, not the whole run's", async () => {
    reset();
    const slow = kModule({
      name: 'test.slow',
      async check(host) {
        if (host.name === 'h1') await new Promise((r) => setTimeout(r, 400));
        return { changes: [], reason: 'waited' };
      },
      async apply() {},
    });
    const { d } = deps(['h1', 'h2']);
    const r = await execute(d, base([play(['h1', 'h2'], [slow({ k: 'a' })])]));
    const ms = Object.fromEntries(r.recap.map((x) => [x.host, x.durationMs]));
    expect(ms.h1).toBeGreaterThanOrEqual(390);
    expect(ms.h2).toBeLessThan(200);
  });

  it('a host refused before any task counts as failed, with the reason', async () => {
    reset();
    const { d } = deps(['h1']);
    const get = d.transports.get;
    d.transports.get = (host) => ({ ...get(host), connect: async () => Promise.reject(new HostRefused(host, 'sudo rejected the become password')) });
    const r = await execute(d, base([play(['h1'], [setKey({ key: 'a', value: '1' })])]));
    expect(r.recap[0]).toMatchObject({ failed: 1, unreachable: false, error: 'sudo rejected the become password' });
  });

  it('a lost connection is said once, not "state unknown (state unknown)"', async () => {
    reset();
    const lossy = kModule({
      name: 'test.remote',
      async check(host) {
        await host.run('probe');
        return { changes: [], reason: 'x' };
      },
      async apply() {},
    });
    const { d, events } = deps(['h1']);
    const get = d.transports.get;
    d.transports.get = (host) => {
      const t = get(host);
      return { ...t, run: async (cmd, o) => (cmd === 'probe' ? Promise.reject(new HostUnreachable(host, 'connection lost: state unknown')) : t.run(cmd, o)) };
    };
    const r = await execute(d, base([play(['h1'], [lossy({ k: 'a' })])]));
    expect(r.recap[0].error).toBe('connection lost: state unknown');
    expect(events.find((e) => e.type === 'host.unreachable')).toMatchObject({ error: 'connection lost: state unknown' });
  });

  it('a changed secret alone is drift: fingerprints are keyed hashes of the real values, never the values', async () => {
    reset();
    let password = new Secret('first-Passw0rd-value');
    const secretive = kModule({
      name: 'test.secretive',
      async check() {
        return { changes: [{ what: `set password ${password.reveal()}` }], diff: [{ kind: 'value', name: 'pw', before: null, after: password as unknown as string, sensitive: true }] };
      },
      async apply() {},
    });
    const key = randomBytes(32);
    const { d } = deps(['h1']);
    const tasks = [secretive({ k: 'a' })];
    const planned = await execute(d, base([play(['h1'], tasks)], { checkMode: true, recordPlan: { key } }));
    const text = JSON.stringify(planned.plan);
    expect(text).not.toContain('first-Passw0rd-value');
    const plan = planOf(planned.plan, key);
    // Same secret: no drift.
    const same = await execute(d, base([play(['h1'], tasks)], { expectedPlan: plan, verify: false }));
    expect(same.recap[0]).toMatchObject({ failed: 0 });
    // Only the vault value changes.
    password = new Secret('second-Passw0rd-value');
    const { d: d2, events } = deps(['h1']);
    const r = await execute(d2, base([play(['h1'], tasks)], { expectedPlan: plan, verify: false }));
    expect(events.find((e) => e.type === 'host.failed')).toMatchObject({ error: 'drifted since plan: test.secretive a' });
    expect(r.anyFailed).toBe(true);
  });
});

describe('executor: handlers are never lost', () => {
  /** A handler that fails while `broken` is set, and records its successful runs. */
  let broken = true;
  const restarts: string[] = [];
  const restart = kModule({
    name: 'test.restart',
    async check() {
      return { changes: [{ what: 'restart' }], always: true };
    },
    async apply(host) {
      if (broken) throw new Error('restart failed');
      restarts.push(host.name);
    },
  });

  it('a handler that failed stays pending on the host and runs on the next run, which says why', async () => {
    reset();
    broken = true;
    restarts.length = 0;
    const tasks = [setKey({ key: 'conf', value: '1', notify: 'restart app' })];
    const handlers = { 'restart app': restart({ k: 'app' }) };
    const { d } = deps(['h1']);
    const first = await execute(d, base([play(['h1'], tasks, handlers)], { runId: 'run1' }));
    expect(first.recap[0]).toMatchObject({ changed: 1, failed: 1 });
    expect(JSON.parse(pendingFiles.get('h1')!.get('play-p')!)).toMatchObject({ owner: 'play-p', handlers: [{ name: 'restart app', runId: 'run1' }] });

    // The task does not change again; the handler still runs, and says it was pending.
    broken = false;
    const { d: d2, events } = deps(['h1']);
    const second = await execute(d2, base([play(['h1'], tasks, handlers)], { runId: 'run2' }));
    expect(second.recap[0]).toMatchObject({ ok: 1, changed: 1, failed: 0 });
    expect(restarts).toEqual(['h1']);
    expect(events.find((e) => e.type === 'task.result' && e.handler)).toMatchObject({ task: 'test.restart app (pending from run run1)', status: 'changed' });
    expect(pendingFiles.get('h1')!.size).toBe(0);

    // Once it succeeded it is gone: a third run does not run it.
    const third = await execute(d2, base([play(['h1'], tasks, handlers)], { runId: 'run3' }));
    expect(third.recap[0]).toMatchObject({ ok: 1, changed: 0 });
    expect(restarts).toEqual(['h1']);
  });

  it('check mode shows a pending handler but writes and clears nothing', async () => {
    reset();
    broken = false;
    const handlers = { 'restart app': restart({ k: 'app' }) };
    pendingFiles.set('h1', new Map([['play-p', JSON.stringify({ owner: 'play-p', handlers: [{ name: 'restart app', runId: 'old', since: '' }] })]]));
    const { d, events } = deps(['h1']);
    await execute(d, base([play(['h1'], [setKey({ key: 'x', value: '1', notify: 'restart app' })], handlers)], { checkMode: true }));
    expect(events.find((e) => e.type === 'task.result' && e.handler)).toMatchObject({ status: 'changed' });
    expect([...pendingFiles.get('h1')!.keys()]).toEqual(['play-p']);
    expect(JSON.parse(pendingFiles.get('h1')!.get('play-p')!).handlers).toHaveLength(1);
  });
});

describe('executor: abort', () => {
  it('fails the running task as aborted, starts nothing else, runs no handler', async () => {
    reset();
    const control = new RunControl();
    const hang = kModule({
      name: 'test.hang',
      async check() {
        return { changes: [{ what: 'wait' }] };
      },
      async apply(host) {
        await host.run('long');
      },
    });
    const { d } = deps(['h1']);
    const get = d.transports.get;
    let release: (e: Error) => void = () => {};
    d.transports.get = (host) => {
      const t = get(host);
      // The session's abort kills the command: its run() rejects.
      return { ...t, run: (cmd, o) => (cmd === 'long' ? new Promise((_, rej) => (release = rej)) : t.run(cmd, o)) };
    };
    const done = execute(d, base([play(['h1'], [setKey({ key: 'a', value: '1', notify: 'h' }), hang({ k: 'x' }), setKey({ key: 'b', value: '1' })], { h: setKey({ key: 'handler', value: '1' }) })], { control }));
    await new Promise((r) => setTimeout(r, 20));
    control.abort();
    release(new HostUnreachable('h1', 'connection lost: state unknown'));
    const r = await done;
    expect(applied).toEqual(['h1:a']);
    expect(r.aborted).toBe(true);
    expect(r.recap[0]).toMatchObject({ changed: 1, failed: 1, unreachable: false, error: 'aborted during "test.hang x": state unknown' });
  });
});

describe('batchHosts', () => {
  it.each([
    [undefined, [['a', 'b', 'c', 'd', 'e']]],
    [[2], [['a', 'b'], ['c', 'd'], ['e']]],
    [['40%'], [['a', 'b'], ['c', 'd'], ['e']]],
    [[1, '50%'], [['a'], ['b', 'c'], ['d', 'e']]],
    [['10%'], [['a'], ['b'], ['c'], ['d'], ['e']]],
  ] as const)('serial %j', (serial, expected) => {
    expect(batchHosts(['a', 'b', 'c', 'd', 'e'], serial as (number | string)[] | undefined)).toEqual(expected);
  });
});
