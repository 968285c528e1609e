/**
 * Live cluster state: which member is the primary NOW (a promoted PostgreSQL replica, the
 * master after a Sentinel failover), as opposed to what the inventory says.
 *
 * The inventory describes the cluster as it was built. After a failover it is stale, and a
 * role must neither revert the failover nor build on the stale picture (ROLES.md: "where the
 * inventory and reality disagree, the role stops that host with an error that says what it
 * found and what to run"). A role's task list is built from facts before any task runs, so
 * live state is read by tasks, at check time:
 *
 *   - `observeMembers(host, members, probe)` runs a read-only probe on each member, through
 *     that member's own session (HostContext.peerRun: opened when needed, no run lock, even
 *     for members outside --limit), all at once, and says what each one is: primary, replica,
 *     or unknown (down, not set up yet) with what it answered.
 *   - `livePrimary(states)` names the one primary, or none; two primaries is a split brain,
 *     an error naming both.
 *   - the module `cluster.primary` (src/modules/cluster.ts) is the guard a role puts first:
 *     it passes when the live primary is the inventory's (or when no member answers as
 *     primary yet: a cluster not built), and fails the host otherwise, with what it found
 *     and the role's hint (what to change in the inventory).
 *   - a role's own module calls livePrimary() in its check() where a value must follow the
 *     live primary rather than the inventory (a Sentinel's `monitor` line on first setup).
 *
 * The probes themselves (`select pg_is_in_recovery()`, `SENTINEL get-master-addr-by-name`)
 * belong to the roles: a probe is a command and a reading of its result.
 */
import type { HostContext } from '../modules/types.js';
import type { RunResult } from '../transport/types.js';

export type LiveRole = 'primary' | 'replica' | 'unknown';

export interface RoleProbe {
  /** What it asks, for messages: "pg_is_in_recovery()". */
  describe: string;
  /** Run as root on each member. Read-only. */
  command: string;
  /** The member's role from what the command returned ('unknown': no usable answer). */
  read(r: RunResult): LiveRole;
  timeoutMs?: number;
}

export interface MemberState {
  name: string;
  role: LiveRole;
  /** What it answered, for people: "t", "exit 2: could not connect", "unreachable: ...". */
  answer: string;
}

/** The probe on every member, in parallel; a member that cannot be asked is 'unknown', never an error. */
export async function observeMembers(host: HostContext, members: string[], probe: RoleProbe): Promise<MemberState[]> {
  const peerRun = host.peerRun;
  if (!peerRun) throw new Error('live cluster state needs the engine (HostContext.peerRun): run it through infra apply');
  return Promise.all(
    members.map(async (name): Promise<MemberState> => {
      try {
        const r = await peerRun(name, probe.command, { timeoutMs: probe.timeoutMs ?? 20_000 });
        return { name, role: probe.read(r), answer: answerOf(r) };
      } catch (e) {
        return { name, role: 'unknown', answer: `unreachable: ${e instanceof Error ? e.message : String(e)}` };
      }
    }),
  );
}

function answerOf(r: RunResult): string {
  const out = r.stdout.trim().split('\n')[0] ?? '';
  if (r.code === 0) return out.slice(0, 80) || '(nothing)';
  return `exit ${r.code}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n')[0].slice(0, 80)}` : ''}`;
}

/** "db1: t, db2: f" */
export const summarize = (states: MemberState[], probe: Pick<RoleProbe, 'describe'>): string =>
  `${probe.describe} on ${states.map((s) => `${s.name}: ${s.answer}`).join(', ')}`;

export class SplitBrain extends Error {}

/** The one member answering as primary; undefined when none does; SplitBrain when several do. */
export function livePrimary(states: MemberState[], probe: Pick<RoleProbe, 'describe'>): string | undefined {
  const primaries = states.filter((s) => s.role === 'primary').map((s) => s.name);
  if (primaries.length > 1) {
    throw new SplitBrain(`several members answer as primary: ${primaries.join(', ')} (${summarize(states, probe)}); fix the cluster by hand before converging it`);
  }
  return primaries[0];
}
