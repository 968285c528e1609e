/**
 * Ad-hoc work on hosts without a playbook: `infra exec` (one command, output grouped per
 * host) and `infra facts`. exec is a run like any other: the same session (run lock, Ctrl-C,
 * abort, recap, audit record), with one command instead of tasks.
 */
import { selectHosts } from '../inventory/limit.js';
import { TransportPool } from '../transport/index.js';
import { gatherFacts } from '../facts/index.js';
import type { Facts } from '../facts/types.js';
import { redact } from '../secrets/secret.js';
import { messageOf } from '../errors.js';
import { HostUnreachable, type Transport } from '../transport/types.js';
import { forEachLimit } from './batches.js';
import { loadInventoryFor } from './input.js';
import { RunSession, type KeepaliveOptions } from './session.js';
import type { RunControl } from './control.js';
import { connectHost } from './host-run.js';

export interface AdhocRequest {
  cwd: string;
  inventory: string;
  limit?: string;
  vaultPasswordFile?: string;
  forks: number;
  json: boolean;
  acceptNew: boolean;
  commandLine: string;
  keepalive?: KeepaliveOptions;
}

export interface ExecRequest extends AdhocRequest {
  /** One shell string, as typed after --. */
  command: string;
  timeoutMs?: number;
  lockWaitMs: number;
  control: RunControl;
}

/**
 * Runs the command on every selected host. The audit record is kept on every host the command
 * was started on, whatever its exit code: an apply records only on hosts that changed because
 * it knows what changed; an ad-hoc command has no such notion (`rm -rf x; false` fails and
 * still changes the host).
 */
export async function execOnHosts(req: ExecRequest): Promise<number> {
  const inventory = await loadInventoryFor(req);
  const hosts = selectHosts(inventory, req.limit ?? 'all');
  const session = new RunSession({ ...req, inventory, hosts, mode: 'exec', diff: false });
  const startedOn: string[] = [];
  return session.guard(async () => {
    session.start();
    const lock = { meta: session.lockMeta(), waitMs: req.lockWaitMs };
    await forEachLimit(hosts, req.forks, async (host) => {
      if (req.control.stopping) return;
      const h = session.hosts.get(host);
      try {
        if (!(await connectHost(h, { transports: session.pool, reporter: session.reporter, lock }))) return;
        startedOn.push(host);
        const res = await h.transport!.run(req.command, { timeoutMs: req.timeoutMs });
        session.reporter.emit({ type: 'exec.output', host, code: res.code, stdout: res.stdout, stderr: res.stderr });
        h.count(res.code === 0 ? 'changed' : 'failed', 'exec');
      } catch (e) {
        h.counts.failed++;
        if (req.control.aborted) h.fail('aborted: the command was killed: state unknown');
        else if (e instanceof HostUnreachable) h.lostMidway(e);
        else h.fail(messageOf(e));
      } finally {
        h.finish();
      }
    });
    const recap = session.hosts.recap(session.pool.counters());
    const exitCode = session.exitCode({ anyFailed: recap.some((r) => r.failed > 0 || r.unreachable) });
    await session.end({ exitCode, aborted: req.control.aborted, recordOn: startedOn });
    return exitCode;
  });
}

/** Gathers facts from every selected host: host → facts, or host → error. Read-only: no lock, no record. */
export function factsOfHosts(req: AdhocRequest): Promise<Record<string, Facts | { error: string }>> {
  return readFromHosts(req, (t) => gatherFacts((cmd) => t.run(cmd)));
}

/**
 * Runs `read` (read-only commands: facts, versions) on every selected host's connection:
 * host → its result, or host → error. No lock, no record: nothing changes.
 */
export async function readFromHosts<T>(req: AdhocRequest, read: (t: Transport) => Promise<T>): Promise<Record<string, T | { error: string }>> {
  const inventory = await loadInventoryFor(req);
  const hosts = selectHosts(inventory, req.limit ?? 'all');
  const pool = new TransportPool(inventory, {
    knownHostsPath: inventory.knownHostsPath,
    acceptNew: req.acceptNew,
    keepaliveIntervalMs: req.keepalive?.intervalMs,
    keepaliveCountMax: req.keepalive?.countMax,
  });
  const out: Record<string, T | { error: string }> = {};
  try {
    await forEachLimit(hosts, req.forks, async (host) => {
      try {
        const t = pool.get(host);
        await t.connect();
        out[host] = await read(t);
      } catch (e) {
        out[host] = { error: redact(messageOf(e)) };
      }
    });
  } finally {
    await pool.closeAll();
  }
  return Object.fromEntries(hosts.map((h) => [h, out[h]]));
}
