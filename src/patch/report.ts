/**
 * The patch report for the change record: per host what was upgraded (old → new), whether it
 * rebooted, how long it was out of service, and where the rollout stopped. Written as JSON
 * (machines) and Markdown (the change ticket) beside the audit trail, or into --report-dir.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { redact, redactDeep } from '../secrets/secret.js';
import type { PendingUpdate, Selection } from './apt.js';

export type HostOutcome = 'patched' | 'failed' | 'up to date' | 'untouched' | 'pending';

export interface Step {
  step: string;
  ok: boolean;
  ms: number;
  detail: string;
}

export interface HostReport {
  host: string;
  group: string;
  outcome: HostOutcome;
  /** What the scan found pending (all of it; `upgraded` is what was installed). */
  pending: PendingUpdate[];
  upgraded: { name: string; from: string | null; to: string; security: boolean }[];
  reboot: { required: string[]; done: boolean; note?: string; restarted: string[] };
  /** From leaving service (drain, VIP moved, failover) to being back in it; `to` unset: still out. */
  outOfService?: { how: string; from: string; to?: string; ms?: number; back?: string };
  steps: Step[];
  error?: string;
}

export interface GroupReport {
  name: string;
  strategy: string;
  describe: string;
  serial: number | string;
  /** In the order they were (or would be) patched. */
  hosts: string[];
  window?: { name: string; open: boolean; next?: string };
}

export interface PatchReport {
  version: 1;
  runId: string;
  inventory: string;
  command: string;
  mode: 'patch' | 'check';
  selection: Selection;
  started: string;
  ended: string;
  exitCode: number;
  result: 'patched' | 'nothing to patch' | 'pending' | 'stopped' | 'interrupted';
  stopped?: { host: string; reason: string };
  /** Hosts in patch order, as planned. */
  order: string[];
  groups: GroupReport[];
  hosts: HostReport[];
}

export function defaultReportDir(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(state, 'infra', 'patch');
}

/** Writes <dir>/patch-<env>-<time>-<run>.{json,md} (0600: a change record, not public) and returns both paths. */
export async function writeReports(dir: string, r: PatchReport): Promise<{ json: string; markdown: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stamp = r.started.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const base = join(dir, `patch-${basename(r.inventory).replace(/[^A-Za-z0-9_.-]/g, '_')}-${stamp}-${r.runId}`);
  const safe = redactDeep(r);
  await writeFile(`${base}.json`, JSON.stringify(safe, null, 2) + '\n', { mode: 0o600 });
  await writeFile(`${base}.md`, redact(renderMarkdown(safe)), { mode: 0o600 });
  return { json: `${base}.json`, markdown: `${base}.md` };
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const versions = (u: { name: string; from: string | null; to: string; security: boolean }): string => `${u.name} ${u.from ?? '(new)'} → ${u.to}${u.security ? ' (security)' : ''}`;
const seconds = (ms?: number): string => (ms === undefined ? '' : `${(ms / 1000).toFixed(1)} s`);

export function renderMarkdown(r: PatchReport): string {
  const title = r.mode === 'check' ? 'Patch check' : 'Patch run';
  const out = [
    `# ${title} ${r.inventory} — ${r.result}`,
    '',
    `- run: \`${r.runId}\`, ${r.started} → ${r.ended}, exit ${r.exitCode}`,
    `- command: \`${r.command}\``,
    `- updates: ${r.selection === 'security' ? 'security only' : 'all'}`,
    `- order: ${r.order.join(' → ') || '(nothing to patch)'}`,
  ];
  if (r.stopped) out.push(`- **stopped at ${r.stopped.host}:** ${r.stopped.reason.split('\n')[0]}`);
  out.push('', '## Groups', '', '| group | strategy | at a time | hosts | window |', '|---|---|---|---|---|');
  for (const g of r.groups) {
    const w = g.window ? `${g.window.name}: ${g.window.open ? 'open' : `closed, next ${g.window.next}`}` : '';
    out.push(`| ${g.name} | ${cell(g.describe)} | ${g.serial} | ${g.hosts.join(', ')} | ${cell(w)} |`);
  }
  out.push('', '## Hosts', '', '| host | group | result | upgraded | reboot | out of service |', '|---|---|---|---|---|---|');
  for (const h of r.hosts) {
    const list = r.mode === 'check' ? h.pending.map(versions) : h.upgraded.map(versions);
    const reboot = h.reboot.done ? 'rebooted' : h.reboot.note ?? (h.reboot.required.length ? 'required' : '');
    const oos = h.outOfService ? `${seconds(h.outOfService.ms) || 'still out'} (${h.outOfService.how})` : '';
    out.push(`| ${h.host} | ${h.group} | ${h.outcome}${h.error ? `: ${cell(h.error.split('\n')[0])}` : ''} | ${cell(list.join('<br>'))} | ${cell(reboot)} | ${cell(oos)} |`);
  }
  for (const h of r.hosts.filter((x) => x.steps.length > 0)) {
    out.push('', `### ${h.host}`, '');
    for (const s of h.steps) out.push(`- ${s.ok ? '✓' : '✗'} ${s.step} (${seconds(s.ms)}): ${s.detail.split('\n').join(' / ')}`);
    if (h.reboot.restarted.length) out.push(`- restarted: ${h.reboot.restarted.join(', ')}`);
  }
  return out.join('\n') + '\n';
}
