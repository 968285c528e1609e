/** Writes the run's audit record: locally, and on the hosts that keep a copy (src/audit). */
import { recordRun } from '../audit/index.js';
import type { AuditMode } from '../audit/record.js';
import type { HostRecap } from '../report/events.js';
import type { RunOptions, RunResult } from '../transport/types.js';
import { redact } from '../secrets/secret.js';

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
  if (!recorded.local.ok) process.stderr.write(redact(`warning: audit record not written to ${recorded.local.file}: ${recorded.local.error}\n`));
  for (const [host, res] of Object.entries(recorded.remote)) {
    if (!res.ok) process.stderr.write(redact(`warning: audit record not written on ${host}: ${res.error ?? 'unknown error'}\n`));
  }
}
