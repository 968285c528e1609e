/**
 * Running a command whose failure must fail the task: the error names what was attempted,
 * the exit code and the tail of stderr (the part people need at 3 a.m.).
 */
import type { RunOptions, RunResult } from '../transport/types.js';
import type { HostContext } from './types.js';

const TAIL_LINES = 15;

export function tail(text: string, lines = TAIL_LINES): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

export function commandFailed(what: string, r: RunResult): Error {
  const out = tail(r.stderr) || tail(r.stdout);
  return new Error(`${what} failed (exit ${r.code})${out ? `:\n${out}` : ''}`);
}

/** host.run that throws on a non-zero exit. */
export async function runChecked(host: HostContext, cmd: string, what: string, opts?: RunOptions): Promise<RunResult> {
  const r = await host.run(cmd, opts);
  if (r.code !== 0) throw commandFailed(what, r);
  return r;
}

/**
 * runChecked for a read whose output is data (a probe, a file's content): over the output cap
 * the session keeps only the tail, which would parse as wrong data, so a drop fails the read.
 */
export async function readChecked(host: HostContext, cmd: string, what: string, opts?: RunOptions): Promise<RunResult> {
  const r = await runChecked(host, cmd, what, opts);
  if (r.dropped?.stdout) throw new Error(`${what}: the output is too large (${r.dropped.stdout} bytes over the limit)`);
  return r;
}

export { splitSections } from '../shell/sections.js';
