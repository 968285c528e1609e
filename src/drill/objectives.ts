/**
 * Recovery objectives from the inventory and the verdict of a drill (pure). The targets are
 * the seed's (RTO 1 h, RPO 5 min) unless the inventory says otherwise:
 *
 *   dr_objectives: { rto: 1h, rpo: 5m }        # group_vars/all.yaml
 */
import { z } from 'zod';
import { UserError } from '../errors.js';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  return m ? Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]) : undefined;
}

const duration = z.string().refine((v) => parseDuration(v) !== undefined, 'a duration such as 90s, 5m or 1h');
const objectivesSchema = z.object({ rto: duration.default('1h'), rpo: duration.default('5m') }).strict().default({});

export interface Objectives {
  rtoMs: number;
  rpoMs: number;
}

/** The objectives of a host's vars (`dr_objectives`), defaults for what is not set. */
export function objectivesOf(vars: Record<string, unknown>, host: string): Objectives {
  const parsed = objectivesSchema.safeParse(vars.dr_objectives);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `dr_objectives${i.path.map((p) => `.${p}`).join('')}: ${i.message}`).join('; ');
    throw new UserError(`host ${host}: ${problems}`, { hint: 'dr_objectives: { rto: 1h, rpo: 5m } in group_vars/all.yaml (durations: 90s, 5m, 1h)' });
  }
  return { rtoMs: parseDuration(parsed.data.rto)!, rpoMs: parseDuration(parsed.data.rpo)! };
}

/** What a drill measured. */
export interface Measured {
  /** From the disaster until writes succeed again (on the new primary, or on the restored data). */
  rtoMs: number;
  /** The span of acknowledged writes lost (0 when none was). */
  rpoMs: number;
  /** Acknowledged writes during the drill, and how many of them are gone afterwards. */
  acknowledged: number;
  lost: number;
  /** What people should know about the measurement. */
  notes: string[];
}

export interface Verdict {
  rtoMet: boolean;
  rpoMet: boolean;
  met: boolean;
}

export function judge(m: Measured, o: Objectives): Verdict {
  const rtoMet = m.rtoMs <= o.rtoMs;
  const rpoMet = m.rpoMs <= o.rpoMs;
  return { rtoMet, rpoMet, met: rtoMet && rpoMet };
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/** One line per objective: "RTO 4.2 s (target 1 h): met". */
export function verdictLines(m: Measured, o: Objectives, v: Verdict): string[] {
  return [
    `RTO ${formatMs(m.rtoMs)} (target ${formatMs(o.rtoMs)}): ${v.rtoMet ? 'met' : 'MISSED'}`,
    `RPO ${formatMs(m.rpoMs)}, ${m.lost} of ${m.acknowledged} acknowledged writes lost (target ${formatMs(o.rpoMs)}): ${v.rpoMet ? 'met' : 'MISSED'}`,
  ];
}
