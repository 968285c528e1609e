/**
 * Runs one tool invocation and measures it from the controller's side:
 * - wall time (hrtime around the child),
 * - CPU user+sys of the whole waited-for process tree (`/usr/bin/time`, i.e. getrusage of children),
 * - peak RSS of the largest single process (`/usr/bin/time` %M) and the peak of the summed RSS
 *   of the process tree, sampled from /proc every 250 ms,
 * - "detached" processes that getrusage cannot see (OpenSSH ControlPersist masters daemonize,
 *   so their CPU would go unbilled): matched by a marker in their command line, their CPU is
 *   read from /proc before they are ended and added to the total.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, readdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Measured {
  code: number;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** user + sys seconds of the child tree, plus detached helpers. */
  cpuS: number;
  /** Largest single process (kB), from getrusage. */
  maxRssKb: number;
  /** Peak of the summed PSS of the tree and its detached helpers (kB), sampled every 250 ms. */
  treePssKb: number;
  /** CPU seconds of detached helpers (already included in cpuS). */
  detachedCpuS: number;
}

export interface MeasureOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Command-line substring of detached helpers to bill to this run (then ended). */
  detachedMarker?: string;
  timeoutMs?: number;
}

const TICKS_PER_S = 100; // USER_HZ on Linux
const PAGE_KB = 4;

export async function measure(cmd: string, args: string[], opts: MeasureOptions = {}): Promise<Measured> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-time-'));
  const timeFile = join(dir, 'time');
  try {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let treePssKb = 0;
    const detachedTicks = new Map<number, number>(); // pid → cpu ticks, last seen
    cmdlineCache.clear();
    const sample = async (final = false): Promise<void> => {
      if (child.pid === undefined) return;
      const procs = await processTable();
      const tree = final ? [] : descendants(procs, [child.pid]);
      const detached = opts.detachedMarker ? detachedOf(procs, opts.detachedMarker, new Set(tree)) : [];
      for (const pid of detached) detachedTicks.set(pid, procs.get(pid)!.cpuTicks);
      if (final) return;
      const pss = await Promise.all([...tree, ...detached].map(pssKb));
      treePssKb = Math.max(treePssKb, pss.reduce((a, b) => a + b, 0));
    };
    const timer = setInterval(() => void sample().catch(() => undefined), 250);
    void sample().catch(() => undefined);
    const timeout = opts.timeoutMs ? setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs) : undefined;
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    clearInterval(timer);
    if (timeout) clearTimeout(timeout);

    let detachedCpuS = 0;
    if (opts.detachedMarker) {
      await sample(true);
      detachedCpuS = [...detachedTicks.values()].reduce((a, b) => a + b, 0) / TICKS_PER_S;
      // Cold start for every measured run. These processes are ours: matched by our private marker.
      const alive = detachedOf(await processTable(), opts.detachedMarker, new Set());
      for (const pid of alive) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
    }
    const [, user, sys, maxRss] = (await readFile(timeFile, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number) as number[];
    return {
      code,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      wallMs,
      cpuS: (user ?? 0) + (sys ?? 0) + detachedCpuS,
      maxRssKb: maxRss ?? 0,
      treePssKb,
      detachedCpuS,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface Proc {
  ppid: number;
  rssKb: number;
  /** utime + stime + cutime + cstime */
  cpuTicks: number;
  cmdline: string;
}

async function processTable(): Promise<Map<number, Proc>> {
  const table = new Map<number, Proc>();
  const entries = await readdir('/proc');
  await Promise.all(
    entries.map(async (e) => {
      if (!/^\d+$/.test(e)) return;
      try {
        const stat = await readFile(`/proc/${e}/stat`, 'utf8');
        // Fields after "(comm)": comm may contain spaces, so split after the last ')'.
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const num = (i: number): number => Number(f[i - 3]); // f[0] is field 3 (state)
        const proc: Proc = {
          ppid: num(4),
          cpuTicks: num(14) + num(15) + num(16) + num(17),
          rssKb: num(24) * PAGE_KB,
          cmdline: '',
        };
        table.set(Number(e), proc);
      } catch {
        /* exited meanwhile */
      }
    }),
  );
  return table;
}

function descendants(procs: Map<number, Proc>, roots: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, p] of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), pid]);
  const out: number[] = [];
  const queue = [...roots];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (!procs.has(pid)) continue;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

const cmdlineCache = new Map<number, string>();

/** Processes outside the tree whose command line contains marker, with their descendants. */
function detachedOf(procs: Map<number, Proc>, marker: string, tree: Set<number>): number[] {
  const roots: number[] = [];
  for (const pid of procs.keys()) {
    if (tree.has(pid)) continue;
    let cmd = cmdlineCache.get(pid);
    if (cmd === undefined) {
      cmd = readCmdline(pid);
      if (cmd !== '') cmdlineCache.set(pid, cmd);
    }
    if (cmd.includes(marker)) roots.push(pid);
  }
  return descendants(procs, roots).filter((pid) => !tree.has(pid));
}

async function pssKb(pid: number): Promise<number> {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}
