/**
 * Batched reads: before a host's tasks run, the first read of every task whose module opts in
 * (Module.batchReads) is gathered, and all of them run in ONE command on the host. Each task's
 * check() then gets its read's result from here instead of a round trip of its own.
 *
 * Check → diff → apply semantics stay exactly as without batching:
 *  - a result is only handed to check(), never to apply(), and only for the same command text
 *    (no stdin) that check() sends; any other command goes to the host as usual;
 *  - each task takes a result at most once (a check that reads again, polls, gets a live read);
 *  - any apply forgets every batched result (HostRun.forgetReads): the tasks after a change
 *    read the host again, so a task depending on an earlier change sees the new state.
 *
 * A task's first read is found by running its check() with a host that records the first
 * command and stops there (nothing reaches the host; a check that fails before reading just
 * has nothing to batch: its real check() reports the error).
 */
import { randomBytes } from 'node:crypto';
import { quote } from '../shell/quote.js';
import type { HostContext } from '../modules/types.js';
import type { RunOptions, RunResult, Transport } from '../transport/types.js';
import { HostUnreachable } from '../transport/types.js';
import type { BoundTask } from './types.js';
import type { HostRun } from './host-run.js';

/** The batch as a whole: a wedged read costs this much, then every task reads live. */
const BATCH_TIMEOUT_MS = 60_000;
/** Output of the batch (file contents for diffs come in it); over this, nothing is batched. */
const BATCH_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
/** A read's output kept for check() unless it asked for more or less (the session's default). */
const DEFAULT_MAX_OUTPUT_BYTES = 8 * 1024 * 1024;

/** Thrown by the recording host at the first command: the read is known, check() stops there. */
class Recorded extends Error {
  constructor() {
    super('batched reads: first read recorded');
  }
}

/**
 * The first read of each opted-in task, run in one command; results go to h.prefetched.
 * `context` gives a read-only context (the engine's check context) to record with.
 */
export async function prefetchReads(h: HostRun, tasks: BoundTask[], context: (bt: BoundTask) => HostContext): Promise<void> {
  const commands: string[] = [];
  for (const bt of tasks) {
    const mod = bt.task.module;
    if (!mod.batchReads) continue;
    const parsed = mod.params.safeParse(bt.task.params);
    if (!parsed.success || !mod.batchReads(parsed.data)) continue;
    const cmd = await firstRead(context(bt), (host) => mod.check(host, parsed.data));
    if (cmd !== undefined && !commands.includes(cmd)) commands.push(cmd);
  }
  // One read gains nothing over the task's own round trip.
  if (commands.length < 2) return;
  const results = await runBatch((c, o) => h.transport!.run(c, o), commands, { timeoutMs: BATCH_TIMEOUT_MS, maxOutputBytes: BATCH_MAX_OUTPUT_BYTES });
  results.forEach((res, cmd) => h.prefetched.set(cmd, res)); // the others read live
}

/**
 * Runs the reads as one batchScript: command → result for each that came back whole. A lost
 * host throws; any other failure of the batch as a whole gives no results.
 */
async function runBatch(run: Transport['run'], commands: string[], opts?: RunOptions): Promise<Map<string, RunResult>> {
  const marker = `@@infra-read-${randomBytes(9).toString('hex')}@@`;
  let r: RunResult;
  try {
    r = await run(batchScript(commands, marker), opts);
  } catch (e) {
    if (e instanceof HostUnreachable) throw e;
    return new Map();
  }
  return r.code === 0 && !r.dropped ? parseBatch(r.stdoutBytes, r.stderr, commands, marker) : new Map();
}

/**
 * A run() whose first calls, made in the same tick without options, go to the host as ONE
 * command (batchScript) and each get their own result; every later call goes straight through.
 * The reads of a connect (facts, pending handlers) then cost one command's processes, not two.
 * A batch that fails as a whole is sent again read by read, so each caller sees its own error.
 */
export function joinFirstReads(run: Transport['run']): Transport['run'] {
  let queue: { cmd: string; resolve: (r: RunResult) => void; reject: (e: unknown) => void }[] | undefined;
  let joining = true;
  const flush = async (): Promise<void> => {
    joining = false;
    const q = queue!;
    const alone = (i: number) => run(q[i].cmd).then(q[i].resolve, q[i].reject);
    if (q.length === 1) return void alone(0);
    let results: Map<string, RunResult>;
    try {
      results = await runBatch(run, q.map((e) => e.cmd));
    } catch (e) {
      return q.forEach((entry) => entry.reject(e)); // the host is lost
    }
    q.forEach((entry, i) => {
      const r = results.get(entry.cmd);
      if (r) entry.resolve(r);
      else void alone(i);
    });
  };
  return (cmd, opts) => {
    if (!joining || opts !== undefined) return run(cmd, opts);
    return new Promise<RunResult>((resolve, reject) => {
      if (!queue) {
        queue = [];
        queueMicrotask(() => void flush());
      }
      queue.push({ cmd, resolve, reject });
    });
  };
}

/** The command a check() sends first, or undefined when it sends none or fails before. */
async function firstRead(real: HostContext, check: (host: HostContext) => Promise<unknown>): Promise<string | undefined> {
  let cmd: string | undefined;
  const stop = (): Promise<never> => Promise.reject(new Recorded());
  const recorder: HostContext = {
    ...real,
    run: (c, o) => {
      if (o?.stdin === undefined) cmd = c;
      return stop();
    },
    put: stop,
    remove: stop,
    get: stop,
    probeConnection: stop,
    peerRun: real.peerRun && stop,
    onHost: real.onHost && stop,
    // Straight through: a recorded read must not be remembered as this host's state.
    cached: (_key, read) => read(),
  };
  try {
    await check(recorder);
  } catch {
    /* Recorded, or an error the real check() will report */
  }
  return cmd;
}

/**
 * The context check() runs with: a command batched for it comes from h.prefetched (once per
 * task, and only while the host has not changed), everything else goes to the host.
 */
export function withPrefetched(ctx: HostContext, h: HostRun): HostContext {
  if (h.prefetched.size === 0) return ctx;
  const taken = new Set<string>();
  return {
    ...ctx,
    run: (cmd: string, o?: RunOptions) => {
      const r = o?.stdin === undefined && !taken.has(cmd) ? h.prefetched.get(cmd) : undefined;
      if (!r || !fits(r, o)) return ctx.run(cmd, o);
      taken.add(cmd);
      return Promise.resolve(r);
    },
  };
}

/** The caller's output cap is respected: a result over it is read live (the session keeps the tail). */
function fits(r: RunResult, o?: RunOptions): boolean {
  const cap = o?.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  return r.stdoutBytes.length <= cap && Buffer.byteLength(r.stderr) <= cap;
}

/**
 * One sh script: each read in its own subshell (its variables, `exit` and `cd` stay there),
 * stdin from /dev/null like a session command, its stdout and stderr straight into the
 * script's, each followed by a line with the marker (and, on stdout, the read's exit code).
 * Nothing but the subshell is forked per read: no temp files, no `stat`, no `cat`. The marker is
 * random per batch, so no output contains it by accident.
 */
export function batchScript(commands: string[], marker: string): string {
  const m = quote(marker);
  return commands.map((cmd) => `(\n${cmd}\n) </dev/null; printf '\\n%s %s\\n' ${m} $?; printf '\\n%s\\n' ${m} >&2`).join('\n');
}

/** Command → its result, for as many reads as arrived whole (a cut-short batch leaves the rest to read live). */
export function parseBatch(out: Buffer, err: string, commands: string[], marker: string): Map<string, RunResult> {
  const results = new Map<string, RunResult>();
  const stderrs = err.split(`\n${marker}\n`);
  const sep = Buffer.from(`\n${marker} `);
  let at = 0;
  for (const [i, cmd] of commands.entries()) {
    const end = out.indexOf(sep, at);
    if (end < 0 || i >= stderrs.length - 1) break;
    const nl = out.indexOf(0x0a, end + sep.length);
    const code = nl < 0 ? NaN : Number(out.subarray(end + sep.length, nl).toString('latin1'));
    if (!Number.isInteger(code)) break;
    const stdoutBytes = Buffer.from(out.subarray(at, end));
    results.set(cmd, { code, stdout: stdoutBytes.toString('utf8'), stderr: stderrs[i]!, stdoutBytes });
    at = nl + 1;
  }
  return results;
}
