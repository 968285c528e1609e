/**
 * The audit trail from the engine's side (src/audit): writing the run's record locally and on
 * the hosts it touched, and reading the hosts' copies back for `infra audit verify --against-hosts`.
 */
import { recordRun, REMOTE_AUDIT_FILE, type RunSummary } from '../audit/index.js';
import type { AuditMode } from '../audit/record.js';
import { selectHosts } from '../inventory/limit.js';
import { TransportPool } from '../transport/index.js';
import { redact } from '../secrets/secret.js';
import type { ExecuteResult } from './executor.js';
import type { SessionRequest } from './session.js';
import { forEachLimit } from './batches.js';
import { loadInventoryFor } from './input.js';

export async function recordAudit(r: {
  result: ExecuteResult;
  started: number;
  exitCode: number;
  mode: string;
  req: SessionRequest;
  pool: TransportPool;
}): Promise<void> {
  await writeAuditRecord(
    {
      runId: r.req.runId,
      commandLine: r.req.commandLine,
      inventory: r.req.inventory.env,
      inventoryDir: r.req.inventory.dir,
      limit: r.req.limit,
      mode: r.mode as AuditMode,
      recap: r.result.recap,
      changedTasks: r.result.changedTasks,
      started: r.started,
      ended: Date.now(),
      exitCode: r.exitCode,
      aborted: r.result.aborted,
    },
    r.pool,
  );
}

/** Writes a run's record (locally, then on the hosts it touched); what failed is a warning on stderr. */
export async function writeAuditRecord(s: RunSummary, pool: TransportPool): Promise<void> {
  const recorded = await recordRun(s, { runOn: (host) => (cmd, o) => pool.get(host).run(cmd, o) });
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
