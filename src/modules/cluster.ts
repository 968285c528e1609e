/**
 * cluster.primary: the guard a clustered role runs first (src/cluster/live.ts). It asks every
 * member who is primary now, through each member's own session, and
 *   - passes when the live primary is the one the inventory names, or when no member answers
 *     as primary yet (a cluster being built: the inventory's choice stands);
 *   - fails the host when another member is the primary (after a failover), saying what each
 *     member answered and what to change (`hint`), so nothing is reverted or re-initialised;
 *   - fails on a split brain (several primaries).
 * It never changes anything. The probe's stdout (trimmed) equal to `primaryOutput` means
 * primary; any other answer with exit 0 means replica; a non-zero exit means unknown.
 */
import { z } from 'zod';
import { livePrimary, observeMembers, summarize, SplitBrain, type RoleProbe } from '../cluster/live.js';
import { defineModule, unchanged } from './types.js';

const primaryParams = z
  .object({
    /** Host pattern of the cluster's members: "postgres", "redis". */
    members: z.string().min(1),
    /** Host pattern naming the inventory's primary (one host): "postgres_primary", "db1". */
    expected: z.string().min(1),
    /** Read-only command run as root on each member: `runuser -u postgres -- psql -tAc 'select pg_is_in_recovery()'`. */
    probe: z.string().min(1),
    /** The probe's output on the primary: "f". */
    primaryOutput: z.string(),
    /** Shown in messages instead of the command: "pg_is_in_recovery()". */
    describe: z.string().optional(),
    /** What to do when the inventory is stale: "move db2 to postgres_primary and db1 to postgres_replica". */
    hint: z.string().optional(),
    timeoutMs: z.number().int().positive().default(20_000),
  })
  .strict();
export type PrimaryParams = z.infer<typeof primaryParams>;

export const primary = defineModule<PrimaryParams, z.input<typeof primaryParams>>({
  name: 'cluster.primary',
  params: primaryParams,
  describe: (p) => `${p.expected} is the primary of ${p.members}`,
  async check(host, p) {
    const members = host.hosts(p.members).map((h) => h.name);
    const expected = host.hosts(p.expected).map((h) => h.name);
    if (expected.length !== 1) throw new Error(`expected "${p.expected}" must name one host, it names ${expected.length ? expected.join(', ') : 'none'}`);
    if (!members.includes(expected[0])) throw new Error(`${expected[0]} is not one of the members (${p.members})`);
    const probe: RoleProbe = {
      describe: p.describe ?? p.probe,
      command: p.probe,
      timeoutMs: p.timeoutMs,
      read: (r) => (r.code !== 0 ? 'unknown' : r.stdout.trim() === p.primaryOutput ? 'primary' : 'replica'),
    };
    const states = await observeMembers(host, members, probe);
    let live: string | undefined;
    try {
      live = livePrimary(states, probe);
    } catch (e) {
      // Two primaries: the hint says what to run as well.
      throw e instanceof SplitBrain && p.hint ? new SplitBrain(`${e.message}. ${p.hint}`) : e;
    }
    const seen = summarize(states, probe);
    if (live === undefined) return unchanged(`no member answers as primary yet (${seen}): ${expected[0]}, as the inventory says`);
    if (live === expected[0]) return unchanged(`${live} is the primary, as the inventory says (${seen})`);
    throw new Error(
      `the inventory says ${expected[0]} is the primary of ${p.members}, but ${live} is (${seen}). ` +
        `Stopping here so nothing reverts the failover.${p.hint ? ` ${p.hint}` : ' Make the inventory match the cluster, then run again.'}`,
    );
  },
  apply: async () => {},
});
