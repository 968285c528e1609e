/**
 * The engine keeps through put(): each task's writes carry its number and whether the run
 * already replaced the path; each changed task is recorded (play, role, notify, changes);
 * check mode keeps and records nothing.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { execute } from '../../../src/engine/executor.js';
import { RunControl } from '../../../src/engine/control.js';
import type { BoundTask, PreparedPlay } from '../../../src/engine/types.js';
import { defineModule, type Task } from '../../../src/modules/types.js';
import { emptyCounters, type PutOptions, type Transport } from '../../../src/transport/types.js';
import type { Inventory } from '../../../src/inventory/types.js';
import type { Facts } from '../../../src/facts/types.js';
import { RunKeeper } from '../../../src/rollback/keeper.js';

/** Writes `path` unless the fake host already holds `content` there. */
const files = new Map<string, string>();
const write = defineModule<{ path: string; content: string }>({
  name: 'test.write',
  params: z.object({ path: z.string(), content: z.string() }),
  describe: (p) => p.path,
  async check(_host, p) {
    return files.get(p.path) === p.content ? { changes: [], reason: 'same' } : { changes: [{ what: 'content', to: p.content }] };
  },
  async apply(host, p) {
    await host.put(p.path, p.content);
  },
});

function run(tasks: Task[], o: { checkMode?: boolean; role?: string } = {}) {
  const puts: { path: string; opts?: PutOptions }[] = [];
  const commands: string[] = [];
  const t: Transport = {
    host: 'h1',
    counters: emptyCounters(),
    async connect() {},
    async run(cmd) {
      commands.push(cmd);
      return { code: 0, stdout: '', stderr: '', stdoutBytes: Buffer.alloc(0) };
    },
    async put(path, bytes, opts) {
      puts.push({ path, opts });
      files.set(path, String(bytes));
    },
    async remove() {},
    async get() {
      return null;
    },
    async lock() {},
    async close() {},
    async abort() {},
  };
  const inventory = {
    env: 'test',
    dir: '/tmp',
    hosts: new Map([['h1', { name: 'h1', conn: { connection: 'ssh', address: 'h1', port: 22, user: 'admin', become: false }, groups: ['all'], vars: {}, provenance: new Map() }]]),
    groups: new Map(),
    knownHostsPath: '/tmp/kh',
  } as unknown as Inventory;
  const bind = (task: Task): BoundTask => ({ task, vars: {}, roleName: o.role });
  const play: PreparedPlay = { index: 0, name: 'web servers', hosts: ['h1'], batches: [['h1']], anyErrorsFatal: false, byHost: new Map([['h1', { tasks: () => tasks.map(bind), handlers: new Map([['reload a', bind(write({ path: '/run/reloaded', content: 'y' }))]]) }]]) };
  const keep = new RunKeeper('0badcafe', { command: 'infra apply -i test', inventory: 'test' });
  const done = execute(
    {
      inventory,
      transports: { get: () => t, open: () => t, counters: () => ({}) },
      reporter: { emit: () => {}, close: async () => {} },
      gatherFacts: async () => ({}) as Facts,
      renderFile: async () => '',
      readRoleFile: async () => Buffer.alloc(0),
      hostsMatching: () => ['h1'],
    },
    { runId: '0badcafe', plays: [play], checkMode: o.checkMode ?? false, verify: false, forks: 1, control: new RunControl(), keep },
  );
  const records = () => commands.filter((c) => c.includes('"t":"task"'));
  return { done, puts, records };
}

describe('keeping through the engine', () => {
  it('numbers tasks, marks a path the run already replaced, records changed tasks only', async () => {
    files.clear();
    files.set('/etc/same', 'x');
    const r = run(
      [
        write({ path: '/etc/a', content: '1', notify: 'reload a' }),
        write({ path: '/etc/same', content: 'x' }),
        write({ path: '/etc/a', content: '2' }),
      ],
      { role: 'web' },
    );
    await r.done;
    expect(r.puts.map((p) => [p.path, p.opts?.keep?.task, p.opts?.keep?.seen, p.opts?.keep?.runId])).toEqual([
      ['/etc/a', 1, false, '0badcafe'],
      ['/etc/a', 3, true, '0badcafe'],
      ['/run/reloaded', 4, false, '0badcafe'], // the handler: kept too, recorded as no task
    ]);
    const records = r.records();
    expect(records).toHaveLength(2);
    expect(records[0]).toContain('"t":"task","task":1,"label":"test.write /etc/a","module":"test.write","role":"web","play":"web servers","notify":["reload a"]');
    expect(records[1]).toContain('"task":3');
    // The area's first line is the run: who, when, the command.
    expect(records[0]).toMatch(/"t":"run","run":"0badcafe","at":"[^"]+","user":"[^"]+","controller":"[^"]+","command":"infra apply -i test"/);
  });

  it('check mode keeps and records nothing', async () => {
    files.clear();
    const r = run([write({ path: '/etc/a', content: '1' })], { checkMode: true });
    await r.done;
    expect(r.puts).toEqual([]);
    expect(r.records()).toEqual([]);
  });
});
