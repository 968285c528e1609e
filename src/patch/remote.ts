/**
 * What the patch run needs of the hosts, in one interface: commands through each host's run
 * session (connected and locked when the run starts), a HostContext for modules
 * (haproxy.server on the load balancers), inventory lookups, and a reconnect after a reboot.
 * The run implements it over RunSession (run.ts); unit tests over scripted hosts.
 */
import type { Facts } from '../facts/types.js';
import type { HostContext } from '../modules/types.js';
import type { RunOptions, RunResult } from '../transport/types.js';
import { commandFailed } from '../modules/run-checked.js';

export interface Remote {
  run(host: string, cmd: string, opts?: RunOptions): Promise<RunResult>;
  /** A HostContext on `host` for a module's check()/apply(). */
  context(host: string): HostContext;
  facts(host: string): Facts;
  vars(host: string): Record<string, unknown>;
  /** Hosts of the inventory matching a pattern (a group name), in inventory order. */
  hosts(pattern: string): string[];
  /** The address other hosts reach it at (private_address, else address). */
  address(host: string): string;
  /** Its session was dropped (a reboot): a new one, locked again. Throws while the host does not answer. */
  reconnect(host: string): Promise<void>;
  /** Something people must see now (an announced downtime), on the run's output. */
  announce(host: string, message: string): void;
}

/** run() that throws with what was attempted, the exit code and stderr's tail. */
export async function runOk(remote: Remote, host: string, cmd: string, what: string, opts?: RunOptions): Promise<RunResult> {
  const r = await remote.run(host, cmd, opts);
  if (r.code !== 0) throw commandFailed(`${host}: ${what}`, r);
  return r;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value (not undefined/false) or the time is up; then throws `what`. */
export async function waitUntil<T>(what: () => string, timeoutMs: number, probe: () => Promise<T | undefined | false>, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what()} after ${Math.round(timeoutMs / 1000)} s`);
    await sleep(everyMs);
  }
}
