/**
 * The audit trail from the engine's side (src/audit): writing the run's record locally and on
 * the hosts that keep a copy, and reading the hosts' copies back for `infra audit verify --against-hosts`.
 */
import { recordRun, REMOTE_AUDIT_FILE } from '../audit/index.js';
import type { AuditMode } from '../audit/record.js';
import type { HostRecap } from '../report/events.js';
import type { RunOptions, RunResult } from '../transport/types.js';
import { selectHosts } from '../inventory/limit.js';
import { TransportPool } from '../transport/index.js';
import { redact } from '../secrets/secret.js';
import { forEachLimit } from './batches.js';
import { loadInventoryFor } from './input.js';

export interface AuditInput {
  runId: string;
  commandLine: string;
  /** The inventory as named in output, and its directory (for its git state). */
  inventory: string;
  inventoryDir: string;
  limit?: string;
  mode: AuditMode;
  recap: HostRecap[];
  changedTasks: Record<string, string[]>;
  started: number;
  exitCode: number;
  aborted: boolean;
  /** Hosts that keep a copy (default: those that changed). */
  hosts?: string[];
  runOn(host: string): (cmd: string, o: RunOptions & { stdin: string }) => Promise<RunResult>;
}

/** Failures are warnings on stderr, never fatal: a full disk must not turn a finished run into a crash. */
export async function recordAudit(a: AuditInput): Promise<void> {
  const recorded = await recordRun(
    {
      runId: a.runId,
      commandLine: a.commandLine,
      inventory: a.inventory,
      inventoryDir: a.inventoryDir,
      limit: a.limit,
      mode: a.mode,
      recap: a.recap,
      changedTasks: a.changedTasks,
      started: a.started,
      ended: Date.now(),
      exitCode: a.exitCode,
      aborted: a.aborted,
    },
    { runOn: a.runOn, hosts: a.hosts },
  );
  if (!recorded.local.ok) process.stderr.write(redact(`warning: audit record not written to ${recorded.file}: ${recorded.local.error}\n`));
  for (const [host, res] of Object.entries(recorded.remote)) {
    if (!res.ok) process.stderr.write(redact(`warning: audit record not written on ${host}: ${res.error ?? 'unknown error'}\n`));
  }
}

export interface HostCopiesRequest {
  cwd: string;
  inventory: string;
  limit?: string;
  vaultPasswordFile?: string;
  forks: number;
}

/** Each selected host's audit file, as lines ([] when it has none), or why it could not be read. */
export async function readHostCopies(req: HostCopiesRequest): Promise<Array<{ host: string; lines: string[] } | { host: string; error: string }>> {
  const inventory = await loadInventoryFor(req);
  const hosts = selectHosts(inventory, req.limit ?? 'all');
  const pool = new TransportPool(inventory, { knownHostsPath: inventory.knownHostsPath });
  const out = new Map<string, { host: string; lines: string[] } | { host: string; error: string }>();
  try {
    await forEachLimit(hosts, req.forks, async (host) => {
      try {
        const t = pool.get(host);
        await t.connect();
        const bytes = await t.get(REMOTE_AUDIT_FILE);
        out.set(host, { host, lines: bytes ? bytes.toString('utf8').split('\n') : [] });
      } catch (e) {
        out.set(host, { host, error: redact(e instanceof Error ? e.message : String(e)) });
      }
    });
  } finally {
    await pool.closeAll();
  }
  return hosts.map((h) => out.get(h)!);
}
