/** Writes the run's audit record: locally, and on every host that changed (src/audit). */
import { recordRun } from '../audit/index.js';
import type { AuditMode } from '../audit/record.js';
import type { TransportPool } from '../transport/index.js';
import { redact } from '../secrets/secret.js';
import type { ExecuteResult } from './executor.js';
import type { SessionRequest } from './session.js';

export async function recordAudit(r: {
  result: ExecuteResult;
  started: number;
  exitCode: number;
  mode: string;
  req: SessionRequest;
  pool: TransportPool;
}): Promise<void> {
  const recorded = await recordRun(
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
    { runOn: (host) => (cmd, o) => r.pool.get(host).run(cmd, o) },
  );
  if (!recorded.local.ok) process.stderr.write(redact(`warning: audit record not written to ${recorded.local.file}: ${recorded.local.error}\n`));
  for (const [host, res] of Object.entries(recorded.remote)) {
    if (!res.ok) process.stderr.write(redact(`warning: audit record not written on ${host}: ${res.error ?? 'unknown error'}\n`));
  }
}
