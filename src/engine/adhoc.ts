/**
 * Ad-hoc work on hosts without a playbook: `infra exec` (one command, output grouped per
 * host) and `infra facts`. Same transport, reporter and error handling as a run.
 */
import { randomBytes } from 'node:crypto';
import { EXIT } from '../errors.js';
import { redact } from '../secrets/secret.js';
import { selectHosts } from '../inventory/limit.js';
import { TransportPool } from '../transport/index.js';
import { gatherFacts } from '../facts/index.js';
import type { Facts } from '../facts/types.js';
import type { HostRecap } from '../report/events.js';
import { chooseReporter } from './session.js';
import { forEachLimit } from './batches.js';
import { loadInventoryFor } from './input.js';
import { writeAuditRecord } from './audit.js';

export interface AdhocRequest {
  cwd: string;
  inventory: string;
  limit?: string;
  vaultPasswordFile?: string;
  forks: number;
  json: boolean;
  acceptNew: boolean;
  commandLine: string;
  timeoutMs?: number;
}

/** Runs `command` (one shell string, as typed after --) on every selected host. */
export async function execOnHosts(req: AdhocRequest & { command: string }): Promise<number> {
  const inventory = await loadInventoryFor(req);
  const hosts = selectHosts(inventory, req.limit ?? 'all');
  const reporter = chooseReporter({ json: req.json, diff: false });
  const pool = new TransportPool(inventory, { knownHostsPath: inventory.knownHostsPath, acceptNew: req.acceptNew });
  const runId = randomBytes(4).toString('hex');
  const started = Date.now();
  const recap = new Map<string, HostRecap>();
  reporter.emit({ type: 'run.start', runId, command: redact(req.commandLine), mode: 'apply', inventory: inventory.env, hosts, at: new Date().toISOString() });
  try {
    await forEachLimit(hosts, req.forks, async (host) => {
      const r: HostRecap = { host, ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: false, durationMs: 0 };
      recap.set(host, r);
      const t0 = Date.now();
      try {
        const t = pool.get(host);
        await t.connect();
        const res = await t.run(req.command, { timeoutMs: req.timeoutMs });
        reporter.emit({ type: 'exec.output', host, code: res.code, stdout: res.stdout, stderr: res.stderr });
        if (res.code === 0) r.changed++;
        else r.failed++;
      } catch (e) {
        r.unreachable = true;
        r.error = redact(e instanceof Error ? e.message : String(e));
        reporter.emit({ type: 'host.unreachable', host, error: r.error });
      }
      r.durationMs = Date.now() - t0;
    });
    const counters = pool.counters();
    const list = hosts.map((h) => ({ ...recap.get(h)!, counters: counters[h] }));
    const failed = list.some((r) => r.failed || r.unreachable);
    const exitCode = failed ? EXIT.hostFailed : EXIT.ok;
    await auditExec({ runId, req, inventory: inventory.env, inventoryDir: inventory.dir, recap: list, started, exitCode, pool });
    reporter.emit({ type: 'run.end', runId, recap: list, durationMs: Date.now() - started, interrupted: false, exitCode });
    return exitCode;
  } finally {
    await pool.closeAll();
    await reporter.close();
  }
}

/**
 * The audit record of an exec: locally, and on every host the command ran on, whatever its
 * exit code (audit/record.ts `recipients`). Failures are warnings, never fatal.
 */
async function auditExec(a: {
  runId: string;
  req: AdhocRequest;
  inventory: string;
  inventoryDir: string;
  recap: HostRecap[];
  started: number;
  exitCode: number;
  pool: TransportPool;
}): Promise<void> {
  await writeAuditRecord(
    {
      runId: a.runId,
      commandLine: a.req.commandLine,
      inventory: a.inventory,
      inventoryDir: a.inventoryDir,
      limit: a.req.limit,
      mode: 'exec',
      recap: a.recap,
      changedTasks: {},
      started: a.started,
      ended: Date.now(),
      exitCode: a.exitCode,
    },
    a.pool,
  );
}

/** Gathers facts from every selected host: host → facts, or host → error. */
export async function factsOfHosts(req: AdhocRequest): Promise<Record<string, Facts | { error: string }>> {
  const inventory = await loadInventoryFor(req);
  const hosts = selectHosts(inventory, req.limit ?? 'all');
  const pool = new TransportPool(inventory, { knownHostsPath: inventory.knownHostsPath, acceptNew: req.acceptNew });
  const out: Record<string, Facts | { error: string }> = {};
  try {
    await forEachLimit(hosts, req.forks, async (host) => {
      try {
        const t = pool.get(host);
        await t.connect();
        out[host] = await gatherFacts((cmd) => t.run(cmd));
      } catch (e) {
        out[host] = { error: redact(e instanceof Error ? e.message : String(e)) };
      }
    });
  } finally {
    await pool.closeAll();
  }
  return Object.fromEntries(hosts.map((h) => [h, out[h]]));
}
