/**
 * The live side of a run: reporter, transport pool, Ctrl-C handling, audit trail, and the
 * ExecutorDeps that bind them for the executor.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Inventory } from '../inventory/types.js';
import { selectHosts } from '../inventory/limit.js';
import { TransportPool } from '../transport/index.js';
import { gatherFacts } from '../facts/index.js';
import { createReporter } from '../report/index.js';
import type { Reporter } from '../report/events.js';
import { resolveInside, type Renderer } from '../render/template.js';
import type { ExecutorDeps, ExecuteResult } from './executor.js';
import { recordAudit } from './audit.js';

export interface SessionRequest {
  inventory: Inventory;
  renderer: Renderer;
  runId: string;
  hosts: string[];
  json: boolean;
  diff: boolean;
  acceptNew: boolean;
  commandLine: string;
  limit?: string;
}

export interface Session {
  reporter: Reporter;
  deps: ExecutorDeps;
  shouldStop(): boolean;
  interrupted(): boolean;
  record(r: { result: ExecuteResult; started: number; exitCode: number; mode: string }): Promise<void>;
  close(): Promise<void>;
}

export function chooseReporter(opts: { json: boolean; diff: boolean }): Reporter {
  const mode = opts.json ? 'json' : process.stdout.isTTY && !process.env.CI ? 'tty' : 'plain';
  return createReporter({ mode, diff: opts.diff, out: process.stdout });
}

export function openSession(req: SessionRequest): Session {
  const reporter = chooseReporter(req);
  const pool = new TransportPool(req.inventory, {
    knownHostsPath: req.inventory.knownHostsPath,
    acceptNew: req.acceptNew,
  });
  const interrupts = trapInterrupts(reporter);
  const deps: ExecutorDeps = {
    inventory: req.inventory,
    transports: pool,
    reporter,
    gatherFacts: (run) => gatherFacts((cmd) => run(cmd)),
    renderFile: (roleDir, src, data) => req.renderer.renderFile(roleDir, src, data),
    readRoleFile: (roleDir, src) => readFile(resolveInside(join(roleDir, 'files'), src)),
    hostsMatching: (pattern) => selectHosts(req.inventory, pattern),
  };
  return {
    reporter,
    deps,
    shouldStop: () => interrupts.count > 0,
    interrupted: () => interrupts.count > 0,
    record: (r) => recordAudit({ ...r, req, pool }),
    async close() {
      interrupts.release();
      await pool.closeAll();
      await reporter.close();
    },
  };
}

/** First Ctrl-C: start nothing new, finish running tasks and handlers. Second: abort now. */
function trapInterrupts(reporter: Reporter): { count: number; release(): void } {
  const state = {
    count: 0,
    release() {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigint);
    },
  };
  const onSigint = () => {
    state.count++;
    if (state.count === 1) {
      process.stderr.write('\ninterrupted: finishing running tasks and pending handlers (Ctrl-C again to abort)\n');
    } else {
      process.stderr.write('\naborted\n');
      void reporter.close().finally(() => process.exit(130));
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  return state;
}
