/**
 * Plan files: what `plan --out` records per task, and the re-check `apply plan.json` makes
 * before touching a host. A fingerprint is an HMAC, under a random key made for that plan,
 * of what check() observed — over the real values, secrets included — so a vault value that
 * changed since the plan is drift, while the plan file holds neither the value nor a plain
 * hash of it (the key lives only in the 0600 plan file).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Check } from '../modules/types.js';
import { Secret, redact, redactDeep } from '../secrets/secret.js';
import type { BoundTask, PlanFile } from './types.js';

export function newPlanKey(): Buffer {
  return randomBytes(32);
}

export function fingerprint(c: Check, key: Buffer): string {
  const basis = JSON.stringify({ changes: c.changes, diff: c.diff ?? null, observed: c.observed ?? null }, revealSecrets);
  return createHmac('sha256', key).update(basis).digest('hex').slice(0, 32);
}

/** JSON replacer: a Secret counts by its value (its toJSON would give the mask). */
function revealSecrets(this: unknown, k: string, v: unknown): unknown {
  const raw = (this as Record<string, unknown>)[k];
  return raw instanceof Secret ? { secret: raw.reveal() } : v;
}

/** The per-host, per-play task records of a plan being made. */
export class PlanRecorder {
  readonly hosts: PlanFile['hosts'] = {};

  constructor(private readonly key: Buffer) {}

  record(host: string, playIndex: number, task: string, module: string, c: Check): void {
    const byPlay = (this.hosts[host] ??= {});
    (byPlay[String(playIndex)] ??= []).push({ task: redact(task), module, changes: redactDeep(c.changes), fingerprint: fingerprint(c, this.key) });
  }
}

/**
 * Apply from a plan: a check-only pass over the tasks that will run must match the plan's
 * fingerprints exactly. Returns what drifted, or undefined.
 */
export async function driftSincePlan(
  plan: PlanFile,
  host: string,
  playIndex: number,
  runnable: BoundTask[],
  check: (bt: BoundTask, params: unknown) => Promise<Check>,
): Promise<string | undefined> {
  const expected = plan.hosts[host]?.[String(playIndex)];
  if (!expected) return `not in the plan (plan was made for other hosts)`;
  if (runnable.length !== expected.length) return `task list changed since plan (${expected.length} → ${runnable.length} tasks)`;
  const key = Buffer.from(plan.fingerprintKey, 'hex');
  for (let i = 0; i < runnable.length; i++) {
    const bt = runnable[i];
    const parsed = bt.task.module.params.safeParse(bt.task.params);
    if (!parsed.success) return `${bt.task.module.name}: invalid parameters`;
    if (fingerprint(await check(bt, parsed.data), key) !== expected[i].fingerprint) return expected[i].task;
  }
  return undefined;
}
