/**
 * `infra history`: the runs that touched each host — when, who, what command, what changed —
 * read from the host itself: the manifests of the runs it keeps (files, tasks: what rollback
 * can undo) and its copy of the audit trail (every run that changed it, kept or pruned).
 */
import { REMOTE_AUDIT_FILE, type AuditRecord } from '../audit/index.js';
import { selectHosts } from '../inventory/limit.js';
import { loadInventoryFor } from '../engine/input.js';
import { forEachLimit } from '../engine/batches.js';
import { TransportPool } from '../transport/index.js';
import { historyScript } from '../transport/keep.js';
import { sh } from '../shell/quote.js';
import { redact } from '../secrets/secret.js';
import { messageOf } from '../errors.js';
import type { TaskRecord } from './keeper.js';
import { notFileTasks, parseManifest, type PathState } from './manifest.js';

export interface HistoryRequest {
  cwd: string;
  inventory: string;
  limit?: string;
  vaultPasswordFile?: string;
  forks: number;
  acceptNew?: boolean;
}

export interface HistoryRun {
  runId: string;
  at: string;
  user: string;
  controller: string;
  command: string;
  /** apply, run, rollback... (from the audit record) */
  mode?: string;
  result?: string;
  rollbackOf?: string;
  /** kB its kept files use on the host; undefined when it is no longer kept (pruned). */
  keptKb?: number;
  files: { path: string; how: 'created' | 'changed' | 'removed' }[];
  /** Changed tasks that wrote no file (packages, services, users): not undone by a rollback. */
  tasks: TaskRecord[];
  /** Task labels the audit record lists as changed (when the run is no longer kept). */
  changedTasks: string[];
}

export type HostHistory = { host: string; runs: HistoryRun[]; keptKb: number } | { host: string; error: string };

const AUDIT_MARK = '@@audit';

export async function readHistory(req: HistoryRequest): Promise<HostHistory[]> {
  const inventory = await loadInventoryFor({ ...req, vaultOptional: true });
  const hosts = selectHosts(inventory, req.limit ?? 'all');
  const pool = new TransportPool(inventory, { knownHostsPath: inventory.knownHostsPath, acceptNew: req.acceptNew });
  const out = new Map<string, HostHistory>();
  try {
    await forEachLimit(hosts, req.forks, async (host) => {
      try {
        const t = pool.get(host);
        await t.connect();
        const r = await t.run(`(\n${historyScript()}\n)\nprintf '%s\\n' ${AUDIT_MARK}\n${sh`cat -- ${REMOTE_AUDIT_FILE} 2>/dev/null`}\nexit 0`);
        if (r.code !== 0) throw new Error(`reading the history failed (exit ${r.code}): ${r.stderr.trim()}`);
        out.set(host, { host, ...parseHistory(host, r.stdout) });
      } catch (e) {
        out.set(host, { host, error: redact(messageOf(e)) });
      }
    });
  } finally {
    await pool.closeAll();
  }
  return hosts.map((h) => out.get(h)!);
}

/** The history script's output → the host's runs, newest first. */
export function parseHistory(host: string, stdout: string): { runs: HistoryRun[]; keptKb: number } {
  const at = stdout.search(new RegExp(`^${AUDIT_MARK}$`, 'm'));
  const kept = at < 0 ? stdout : stdout.slice(0, at);
  const audit = at < 0 ? '' : stdout.slice(at + AUDIT_MARK.length + 1);
  const runs = new Map<string, HistoryRun>();
  let keptKb = 0;
  for (const block of kept.split(/^@@ /m).filter((b) => b.trim())) {
    const [head, ...lines] = block.split('\n');
    const [id, kb] = head.split(' ');
    try {
      const m = parseManifest(lines.join('\n'));
      keptKb += Number(kb) || 0;
      runs.set(id, {
        runId: id,
        at: m.header.at,
        user: m.header.user,
        controller: m.header.controller,
        command: m.header.command,
        rollbackOf: m.header.rollbackOf,
        keptKb: Number(kb) || 0,
        files: m.paths.map((p) => ({ path: p.path, how: how(p.before, p.after) })),
        tasks: notFileTasks(m),
        changedTasks: [],
      });
    } catch {
      /* an area without its run line: not a run we can describe */
    }
  }
  for (const line of audit.split('\n')) {
    let rec: AuditRecord;
    try {
      rec = JSON.parse(line) as AuditRecord;
    } catch {
      continue;
    }
    const mine = rec.hosts?.[host];
    const run = runs.get(rec.runId);
    if (run) {
      run.mode = rec.mode;
      run.result = rec.result;
    } else if (mine) {
      runs.set(rec.runId, {
        runId: rec.runId,
        at: rec.start,
        user: rec.user,
        controller: rec.controller,
        command: rec.command,
        mode: rec.mode,
        result: rec.result,
        files: [],
        tasks: [],
        changedTasks: mine.changedTasks ?? [],
      });
    }
  }
  return { runs: [...runs.values()].sort((a, b) => b.at.localeCompare(a.at)), keptKb };
}

function how(before: PathState, after: PathState): 'created' | 'changed' | 'removed' {
  if (before === null) return 'created';
  return after === null ? 'removed' : 'changed';
}

/** For people: per host, its runs newest first, what each changed, and whether rollback can undo it. */
export function formatHistory(all: HostHistory[]): string {
  const out: string[] = [];
  for (const h of all) {
    if ('error' in h) {
      out.push(`${h.host}: ${h.error}`, '');
      continue;
    }
    const kept = h.runs.filter((r) => r.keptKb !== undefined).length;
    out.push(`${h.host}: ${h.runs.length} run(s), ${kept} kept for rollback (${h.keptKb} kB)`);
    for (const r of h.runs) {
      const when = r.at.replace('T', ' ').slice(0, 19);
      const what = r.rollbackOf ? `rollback of ${r.rollbackOf}` : (r.mode ?? '');
      out.push(`  ${r.runId}  ${when}  ${r.user}@${r.controller}  ${what}${r.result ? ` (${r.result})` : ''}  ${r.command}`);
      for (const f of r.files) out.push(`      ${f.how.padEnd(8)} ${f.path}`);
      for (const t of r.tasks) {
        out.push(`      ${t.label}: ${t.changes.map((c) => [c.what, c.from, c.to && `→ ${c.to}`].filter(Boolean).join(' ')).join('; ')}`);
      }
      for (const label of r.changedTasks) out.push(`      changed  ${label}`);
      if (r.keptKb === undefined) out.push('      (its files are no longer kept: rollback cannot undo it)');
    }
    out.push('');
  }
  return out.join('\n');
}
