/**
 * meta.skip: a task that does nothing and says why, reported as "skipped" (auditd in a
 * container, a service that cannot run here). Honest output instead of a silent omission.
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
