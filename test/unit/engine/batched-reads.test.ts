/**
 * Batched reads (engine/batched-reads.ts) over a real local session shell: the first reads of a
 * host's tasks go in one command, and check → diff → apply stays exact — a task after a change
 * reads the host again, a result is used once per task, and only check() gets one.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { execute, type ExecutorDeps } from '../../../src/engine/executor.js';
import { batchScript, joinFirstReads, parseBatch } from '../../../src/engine/batched-reads.js';
import { RunControl } from '../../../src/engine/control.js';
import type { BoundTask, PreparedPlay } from '../../../src/engine/types.js';
import type { Facts } from '../../../src/facts/types.js';
import type { HostSpec, Inventory } from '../../../src/inventory/types.js';
import { defineModule, type Task } from '../../../src/modules/types.js';
import type { RunEvent } from '../../../src/report/events.js';
import { sh } from '../../../src/shell/quote.js';
import { LocalTransport } from '../../../src/transport/local.js';
import type { Transport } from '../../../src/transport/types.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'infra-batched-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A key is a file in `dir` holding its value; check reads it with one command, apply writes it. */
const kv = defineModule<{ key: string; value: string; batch: boolean }, { key: string; value: string; batch?: boolean }>({
  name: 'test.kv',
  params: z.object({ key: z.string(), value: z.string(), batch: z.boolean().default(true) }),
  describe: (p) => p.key,
  batchReads: (p) => p.batch,
  async check(host, p) {
    const r = await host.run(sh`cat -- ${join(dir, p.key)} 2>/dev/null || echo '<absent>'`);
    const cur = r.stdout.trim();
    return cur === p.value ? { changes: [], reason: 'already set' } : { changes: [{ what: `set ${p.key}`, from: cur, to: p.value }] };
  },
  async apply(host, p) {
    await host.run(sh`printf %s ${p.value} > ${join(dir, p.key)}`);
  },
});

/** Reads a counter twice in one check (a poll): the second read must reach the host. */
const twice = defineModule<{ key: string }>({
  name: 'test.twice',
  params: z.object({ key: z.string() }),
  describe: (p) => p.key,
  batchReads: () => true,
  async check(host, p) {
    const read = sh`n=$(cat -- ${join(dir, p.key)} 2>/dev/null || echo 0); echo $((n + 1)) > ${join(dir, p.key)}.next; echo $n`;
    const a = (await host.run(read)).stdout.trim();
    await host.run(sh`mv -- ${join(dir, p.key)}.next ${join(dir, p.key)}`);
    const b = (await host.run(read)).stdout.trim();
    return { changes: [], reason: `${a} then ${b}` };
  },
  apply: async () => {},
});

const facts = { hostname: 'local', os: { id: 'debian' } } as unknown as Facts;

function setup() {
  const spec: HostSpec = { name: 'local', conn: { connection: 'local', address: 'localhost', port: 22, user: 'root', become: false }, groups: ['all'], vars: {}, provenance: new Map() };
  const inventory: Inventory = { env: 'test', dir, hosts: new Map([['local', spec]]), groups: new Map([['all', { name: 'all', children: [], hosts: [], vars: {} }]]), knownHostsPath: join(dir, 'kh') };
  const events: RunEvent[] = [];
  const transports: LocalTransport[] = [];
  const d: ExecutorDeps = {
    inventory,
    transports: {
      get: () => transports[0] ?? (transports[0] = new LocalTransport(spec)),
      open: () => new LocalTransport(spec),
      counters: () => ({ local: transports[0]!.counters }),
    },
    reporter: { emit: (e) => events.push(e), close: async () => {} },
    gatherFacts: async () => facts,
    renderFile: async () => '',
    readRoleFile: async () => Buffer.alloc(0),
    hostsMatching: () => ['local'],
  };
  const run = async (tasks: Task[], checkMode = false) => {
    const bind = (t: Task): BoundTask => ({ task: t, vars: {} });
    const play: PreparedPlay = {
      index: 0,
      name: 'p',
      hosts: ['local'],
      batches: [['local']],
      anyErrorsFatal: false,
      byHost: new Map([['local', { tasks: () => tasks.map(bind), handlers: new Map() }]]),
    };
    try {
      const r = await execute(d, { runId: 'r', plays: [play], checkMode, verify: true, forks: 1, control: new RunControl() });
      const done = events.filter((e) => e.type === 'task.result') as { status: string; reason?: string }[];
      return { recap: r.recap[0]!, commands: transports[0]!.counters.commands, results: done.map((e) => e.status), reasons: done.map((e) => e.reason) };
    } finally {
      await transports[0]?.close();
    }
  };
  return { run };
}

const value = (k: string) => readFile(join(dir, k), 'utf8').catch(() => undefined);

describe('batched reads', () => {
  beforeEach(async () => {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
  });

  it('a no-op run reads every task in one command', async () => {
    for (const k of ['a', 'b', 'c', 'd']) await writeFile(join(dir, k), '1');
    const tasks = ['a', 'b', 'c', 'd'].map((key) => kv({ key, value: '1' }));
    const batched = await setup().run(tasks);
    const live = await setup().run(['a', 'b', 'c', 'd'].map((key) => kv({ key, value: '1', batch: false })));
    expect([batched.recap.ok, batched.recap.changed, live.recap.ok]).toEqual([4, 0, 4]);
    // pending-handlers load + the batch, against pending-handlers load + 4 reads.
    expect([batched.commands, live.commands]).toEqual([2, 5]);
  });

  it('a task after a change reads the host again: it sees the new state, not the batched one', async () => {
    // Task 1 sets a; task 2 wants the same value: it must find it set (ok), as without batching
    // (the batch, read before task 1, said "absent"). Task 3 changes it again from "1".
    const r = await setup().run([kv({ key: 'a', value: '1' }), kv({ key: 'a', value: '1' }), kv({ key: 'a', value: '2' }), kv({ key: 'b', value: '3' })]);
    expect(r.results).toEqual(['changed', 'ok', 'changed', 'changed']);
    expect(r.reasons[1]).toBe('already set');
    expect([await value('a'), await value('b')]).toEqual(['2', '3']);
    // A second run: all batched, all ok.
    const again = await setup().run([kv({ key: 'a', value: '2' }), kv({ key: 'b', value: '3' })]);
    expect([again.results, again.commands]).toEqual([['ok', 'ok'], 2]);
  });

  it('check mode: nothing applied, each task decides from the batch', async () => {
    await writeFile(join(dir, 'a'), '1');
    const r = await setup().run([kv({ key: 'a', value: '1' }), kv({ key: 'b', value: '2' }), kv({ key: 'b', value: '2' })], true);
    expect([r.results, r.commands, await value('b')]).toEqual([['ok', 'changed', 'changed'], 2, undefined]);
  });

  it('a task takes a batched result once: a second identical read in its check goes to the host', async () => {
    await writeFile(join(dir, 'n'), '5');
    const r = await setup().run([twice({ key: 'n' }), kv({ key: 'x', value: '1' })]);
    expect([r.results, r.reasons[0]]).toEqual([['ok', 'changed'], '5 then 6']);
  });
});

describe('batchScript / parseBatch', () => {
  const MARKER = '@@infra-read-0123456789abcdef@@';
  it('runs each read in its own subshell: exit codes, stderr, bytes and variables stay its own', async () => {
    const t = new LocalTransport({ name: 'local', conn: { connection: 'local', address: 'localhost', port: 22, user: 'root', become: false } });
    const cmds = [
      'echo one; echo err >&2; exit 3',
      "__infra_b_o=/dev/null; p=x; cd /; printf 'a\\0b\\n\\n'",
      'echo "p=${p:-unset}"; test -t 0 || read -r line || echo "stdin empty"',
      'exit 0',
    ];
    try {
      const r = await t.run(batchScript(cmds, MARKER));
      expect(r.code).toBe(0);
      const got = parseBatch(r.stdoutBytes, r.stderr, cmds, MARKER);
      expect([...got.values()].map((x) => [x.code, x.stdout, x.stderr])).toEqual([
        [3, 'one\n', 'err\n'],
        [0, 'a\0b\n\n', ''],
        [0, 'p=unset\nstdin empty\n', ''],
        [0, '', ''],
      ]);
    } finally {
      await t.close();
    }
  });

  it('keeps only the reads that arrived whole', () => {
    const out = Buffer.from(`abc\n${MARKER} 0\nab`);
    const err = `\n${MARKER}\n`;
    expect([...parseBatch(out, err, ['x', 'y'], MARKER).keys()]).toEqual(['x']);
    // stdout whole, its stderr marker missing (stderr cut short): not taken
    expect(parseBatch(out, '', ['x'], MARKER).size).toBe(0);
    expect(parseBatch(Buffer.from('garbage\n'), err, ['x'], MARKER).size).toBe(0);
  });
});

describe('joinFirstReads', () => {
  const local = () => new LocalTransport({ name: 'local', conn: { connection: 'local', address: 'localhost', port: 22, user: 'root', become: false } });

  it('reads asked in the same tick go as one command, each with its own result; later ones go alone', async () => {
    const t = local();
    const sent: string[] = [];
    const run: Transport['run'] = (cmd, o) => (sent.push(cmd), t.run(cmd, o));
    try {
      const joined = joinFirstReads(run);
      const [a, b] = await Promise.all([joined('echo a; exit 0'), joined('echo b >&2; exit 4')]);
      expect([a.code, a.stdout, a.stderr, b.code, b.stdout, b.stderr]).toEqual([0, 'a\n', '', 4, '', 'b\n']);
      expect(sent).toHaveLength(1);
      expect((await joined('echo c')).stdout).toBe('c\n');
      expect(sent.slice(1)).toEqual(['echo c']);
    } finally {
      await t.close();
    }
  });

  it('a batch the host could not run whole is sent again read by read', async () => {
    const sent: string[] = [];
    const run: Transport['run'] = async (cmd) => {
      sent.push(cmd);
      return cmd.includes('@@infra-read-') ? { code: 124, stdout: '', stderr: 'timed out', stdoutBytes: Buffer.alloc(0) } : { code: 0, stdout: `${cmd}!`, stderr: '', stdoutBytes: Buffer.from(`${cmd}!`) };
    };
    const joined = joinFirstReads(run);
    expect((await Promise.all([joined('x'), joined('y')])).map((r) => r.stdout)).toEqual(['x!', 'y!']);
    expect(sent.slice(1)).toEqual(['x', 'y']);
  });
});
