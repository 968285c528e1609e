/**
 * Executor semantics with an in-memory host: check mode never applies, handlers run once at
 * the end of a play and survive a later failure, serial + maxFailPercentage stop a rollout,
 * unreachable hosts are results, plan fingerprints detect drift.
 */
import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import { execute, type ExecutorDeps, type ExecuteOptions } from '../../../src/engine/executor.js';
import { batchHosts } from '../../../src/engine/batches.js';
import { defineModule, makeTask, type Task } from '../../../src/modules/types.js';
import { flushHandlers } from '../../../src/modules/meta.js';
import type { Transport } from '../../../src/transport/types.js';
import { HostUnreachable, emptyCounters } from '../../../src/transport/types.js';
import type { Inventory, HostSpec } from '../../../src/inventory/types.js';
import type { RunEvent } from '../../../src/report/events.js';
import type { PreparedPlay, BoundTask } from '../../../src/engine/types.js';
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

const facts = { hostname: 'x', os: { id: 'debian' }, container: 'docker' } as unknown as Facts;

function inventory(names: string[]): Inventory {
  const hosts = new Map<string, HostSpec>(
    names.map((n) => [n, { name: n, conn: { connection: 'ssh', address: n, port: 22, user: 'admin', become: false }, groups: ['all'], vars: {}, provenance: new Map() }]),
  );
  return { env: 'test', dir: '/tmp', hosts, groups: new Map([['all', { name: 'all', children: [], hosts: [], vars: {} }]]), knownHostsPath: '/tmp/kh' };
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
    async run() {
      const n = (commands.get(host) ?? 0) + 1;
      commands.set(host, n);
      if (opts.dropAfter?.[host] !== undefined && n > opts.dropAfter[host]) throw new HostUnreachable(host, 'connection lost');
      return { code: 0, stdout: '', stderr: '', stdoutBytes: Buffer.alloc(0) };
    },
    async put() {},
    async get() {
      return null;
    },
    async lock() {},
    async close() {},
  });
  const d: ExecutorDeps = {
    inventory: inventory(names),
    transports: { get: transport, counters: () => ({}) },
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
  plays,
  checkMode: false,
  verify: true,
  forks: 10,
  shouldStop: () => false,
  ...o,
});

function reset() {
  state.clear();
  applied.length = 0;
}

describe('executor', () => {
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
    const lossy = defineModule<{ k: string }>({
      name: 'test.remote',
      params: z.object({ k: z.string() }),
      describe: (p) => p.k,
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
    let stop = false;
    const first = defineModule<{ k: string }>({
      name: 'test.stopper',
      params: z.object({ k: z.string() }),
      describe: (p) => p.k,
      async check() {
        return stop ? { changes: [], reason: 'done' } : { changes: [{ what: 'x' }] };
      },
      async apply() {
        stop = true; // the user presses Ctrl-C while this task runs
      },
    });
    const { d } = deps(['h1']);
    await execute(d, base([play(['h1'], [first({ k: 'a', notify: 'h' }), setKey({ key: 'after', value: '1' })], { h: setKey({ key: 'handler', value: '1' }) })], { shouldStop: () => stop }));
    expect(applied).toEqual(['h1:handler']);
  });

  it('records a plan and refuses a host that drifted since', async () => {
    reset();
    const tasks = [setKey({ key: 'a', value: '1' })];
    const { d } = deps(['h1', 'h2']);
    const planned = await execute(d, base([play(['h1', 'h2'], tasks)], { checkMode: true, recordPlan: true }));
    expect(planned.plan.h1['0']).toHaveLength(1);
    // Someone changes h2 by hand after the plan was made.
    state.set('h2', new Map([['a', 'manual']]));
    const plan = { version: 1 as const, createdAt: '', runId: 'r', args: { inventory: 'x', playbook: 'y', extraVars: [] }, hosts: planned.plan };
    const { d: d2, events } = deps(['h1', 'h2']);
    const r = await execute(d2, base([play(['h1', 'h2'], tasks)], { expectedPlan: plan }));
    expect(applied).toEqual(['h1:a']);
    expect(events.find((e) => e.type === 'host.failed' && e.host === 'h2')).toMatchObject({ error: 'drifted since plan: test.set a' });
    expect(r.anyFailed).toBe(true);
  });

  it('fails a task that does not converge (check after apply still sees changes)', async () => {
    reset();
    const liar = defineModule<{ k: string }>({
      name: 'test.liar',
      params: z.object({ k: z.string() }),
      describe: (p) => p.k,
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
