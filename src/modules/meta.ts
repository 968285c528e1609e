/**
 * meta.*: tasks that change nothing but say something. meta.skip: what cannot run here and
 * why, reported as "skipped" (auditd in a container) — honest output instead of a silent
 * omission. meta.warn: what the people running the plan must act on. meta.flushHandlers:
 * the handlers notified so far run at this point (the engine does it), not at the play's end.
 */
import { z } from 'zod';
import { defineModule } from './types.js';

const skipParams = z.object({ what: z.string().min(1), reason: z.string().min(1) }).strict();
export type SkipParams = z.infer<typeof skipParams>;

export const skip = defineModule<SkipParams>({
  name: 'meta.skip',
  params: skipParams,
  describe: (p) => p.what,
  check: async (_host, p) => ({ changes: [], reason: p.reason, skipped: true }),
  apply: async () => {},
});

/**
 * meta.warn: changes nothing and tells the people running the plan something they must act on
 * (a runtime past its end of life). Every text reporter prints a given warning once per run,
 * however many hosts carry it; --json has it on each task result.
 */
const warnParams = z.object({ what: z.string().min(1), message: z.string().min(1) }).strict();
export type WarnParams = z.infer<typeof warnParams>;

export const warn = defineModule<WarnParams>({
  name: 'meta.warn',
  params: warnParams,
  describe: (p) => p.what,
  check: async (_host, p) => ({ changes: [], reason: p.message, warning: p.message }),
  apply: async () => {},
});

/**
 * meta.flushHandlers: the handlers notified by the tasks before it run right after it (the
 * executor does it), e.g. nginx reloaded with a new site before a deploy's health check goes
 * through it. Handlers notified later still run at the end of the play.
 */
const flushParams = z.object({}).strict();

export const flushHandlers = defineModule<Record<string, never>>({
  name: 'meta.flushHandlers',
  params: flushParams,
  describe: () => 'run the handlers notified so far',
  check: async () => ({ changes: [], reason: 'the handlers notified so far run now' }),
  apply: async () => {},
});
