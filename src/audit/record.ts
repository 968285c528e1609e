/**
 * One audit record per run: who ran what, from which commit, against which hosts, and what
 * changed. Everything in it passes through the redactor before it is written anywhere.
 */
import { execFileSync } from 'node:child_process';
import { userInfo, hostname } from 'node:os';
import { EXIT } from '../errors.js';
import { redactDeep } from '../secrets/secret.js';
import type { HostRecap } from '../report/events.js';

export type AuditMode = 'apply' | 'check' | 'run' | 'patch' | 'exec' | 'drill' | 'rollback';
/** aborted: stopped at once (second Ctrl-C, a bug, the failure policy); interrupted: stopped after what ran (first Ctrl-C, SIGTERM, SIGHUP, output gone). */
export type AuditResult = 'ok' | 'changed' | 'failed' | 'aborted' | 'interrupted';

export interface GitState {
  commit: string;
  dirty: boolean;
}

/** A host's counts as the recap has them, plus the tasks that changed. */
export type AuditHost = Pick<HostRecap, 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable' | 'error'> & {
  changedTasks: string[];
};

/** A record before it joins a chain (no seq, prev or signature yet). */
export interface AuditDraft {
  v: 2;
  runId: string;
  user: string;
  controller: string;
  /** The repository holding the inventory; null outside a git repository. */
  git: GitState | null;
  /** The command line, redacted. */
  command: string;
  inventory: string;
  limit: string | null;
  /** "K/N" when the run was one shard of N (--shard); absent otherwise. */
  shard?: string;
  mode: AuditMode;
  hosts: Record<string, AuditHost>;
  start: string;
  end: string;
  result: AuditResult;
  exitCode: number;
}

/** A record in a signed chain (chain.ts). */
export interface AuditRecord extends AuditDraft {
  /** 1 for the first record of a chain, then +1 per record. */
  seq: number;
  /** The previous record's signature (null for the first). */
  prev: string | null;
  /** Id of the signing key (key.ts). */
  key: string;
  /** ed25519 signature (base64) of the canonical JSON of the record without `sig`. */
  sig: string;
}

export interface RunSummary {
  runId: string;
  commandLine: string;
  /** Inventory name as given (env or path). */
  inventory: string;
  /** Directory of the inventory, for its git state. */
  inventoryDir?: string;
  limit?: string;
  shard?: string;
  mode: AuditMode;
  recap: HostRecap[];
  /** Tasks that changed (or would, in check mode) per host. */
  changedTasks: Record<string, string[]>;
  started: number | Date;
  ended: number | Date;
  exitCode: number;
  aborted?: boolean;
  /** Overrides for tests; default: the OS user, the host name, git of inventoryDir. */
  user?: string;
  controller?: string;
  git?: GitState | null;
}

export function buildRecord(s: RunSummary): AuditDraft {
  const hosts: Record<string, AuditHost> = {};
  for (const r of s.recap) {
    hosts[r.host] = {
      ok: r.ok,
      changed: r.changed,
      failed: r.failed,
      skipped: r.skipped,
      unreachable: r.unreachable,
      ...(r.error ? { error: r.error } : {}),
      changedTasks: s.changedTasks[r.host] ?? [],
    };
  }
  const draft: AuditDraft = {
    v: 2,
    runId: s.runId,
    user: s.user ?? currentUser(),
    controller: s.controller ?? hostname(),
    git: s.git !== undefined ? s.git : s.inventoryDir ? gitState(s.inventoryDir) : null,
    command: s.commandLine,
    inventory: s.inventory,
    limit: s.limit ?? null,
    ...(s.shard ? { shard: s.shard } : {}),
    mode: s.mode,
    hosts,
    start: new Date(s.started).toISOString(),
    end: new Date(s.ended).toISOString(),
    result: resultOf(s),
    exitCode: s.exitCode,
  };
  return redactDeep(draft);
}

/**
 * The hosts that keep a copy of the record: those an apply/run/patch changed (it knows what
 * changed), every host an exec ran on (`rm -rf x; false` fails and still changes the host),
 * none in check mode (it changes nothing, not even a log).
 */
export function recipients(draft: Pick<AuditDraft, 'mode' | 'hosts'>): string[] {
  if (draft.mode === 'check') return [];
  const entries = Object.entries(draft.hosts);
  return (draft.mode === 'exec' ? entries.filter(([, h]) => !h.unreachable) : entries.filter(([, h]) => h.changed > 0)).map(([host]) => host);
}

function resultOf(s: RunSummary): AuditResult {
  if (s.aborted) return 'aborted';
  // A run stopped early is told apart from one that finished (its counts cover what ran).
  if (s.exitCode === EXIT.interrupted) return 'interrupted';
  if (s.recap.some((r) => r.failed > 0 || r.unreachable)) return 'failed';
  if (s.recap.some((r) => r.changed > 0)) return 'changed';
  return s.exitCode === 0 || s.exitCode === 3 ? 'ok' : 'failed';
}

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/** HEAD and dirty flag of the repository containing dir; null outside one (or without git). */
export function gitState(dir: string): GitState | null {
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  try {
    const commit = git('rev-parse', 'HEAD').trim();
    if (!/^[0-9a-f]{40,64}$/.test(commit)) return null;
    return { commit, dirty: git('status', '--porcelain').trim().length > 0 };
  } catch {
    return null;
  }
}
