/**
 * postgres: replicas first, the primary last, in a short announced downtime
 * (patch.postgres.primary: downtime; a switchover path comes with the DR playbooks). Who is
 * primary is what the servers answer now (`select pg_is_in_recovery()`, the role postgres's
 * probe), never the inventory; a member that does not answer stops the run before anything.
 */
import { sh } from '../shell/quote.js';
import type { PatchGroup } from './policy.js';
import type { Remote } from './remote.js';
import type { Strategy } from './strategy.js';

type PgRole = 'primary' | 'replica';

export function postgresReplicasFirst(remote: Remote, group: PatchGroup): Strategy {
  const portOf = (host: string): number => {
    const p = remote.vars(host).postgres_port;
    return typeof p === 'number' ? p : 5432;
  };
  async function roleOf(host: string): Promise<PgRole> {
    const r = await remote.run(host, sh`cd / && runuser -u postgres -- psql -X -A -t -p ${portOf(host)} -c ${'select pg_is_in_recovery()'}`, { timeoutMs: 20_000 });
    const answer = r.stdout.trim();
    if (r.code === 0 && answer === 'f') return 'primary';
    if (r.code === 0 && answer === 't') return 'replica';
    throw new Error(`${host}: pg_is_in_recovery() did not answer (exit ${r.code}: ${(r.stderr.trim() || answer).split('\n')[0]})`);
  }
  const roles = async (hosts: string[]): Promise<Map<string, PgRole>> => new Map(await Promise.all(hosts.map(async (h) => [h, await roleOf(h)] as const)));
  const before = new Map<string, PgRole>();

  return {
    describe: 'replicas first; the primary last, in a short announced downtime',
    helpers: () => [],
    async order(hosts) {
      const r = await roles(hosts);
      const primaries = hosts.filter((h) => r.get(h) === 'primary');
      if (primaries.length > 1) throw new Error(`several members answer as primary: ${primaries.join(', ')} — fix the cluster before patching it`);
      return [...hosts.filter((h) => r.get(h) === 'replica'), ...primaries];
    },
    async guard([host]) {
      // Every member answers with its role: none is already down.
      const r = await roles(remote.hosts(group.name));
      before.set(host, r.get(host)!);
      if (r.get(host) === 'primary') {
        const replicas = [...r].filter(([, role]) => role === 'replica').map(([h]) => h);
        if (replicas.length === 0 && remote.hosts(group.name).length > 1) throw new Error(`${host} is primary and no replica answers`);
      }
    },
    async takeOut(host) {
      if (before.get(host) !== 'primary') return 'replica: no traffic to move';
      const message = `announced downtime: ${host} is the PostgreSQL primary; writes fail until it is patched and back (patch.postgres.primary: downtime)`;
      remote.announce(host, message);
      return message;
    },
    async putBack(host) {
      const now = await roleOf(host);
      if (now !== before.get(host)) throw new Error(`${host} was ${before.get(host)} before the patch and answers as ${now} now`);
      return now === 'primary' ? 'primary answers again: downtime over' : 'replica answers (in recovery)';
    },
  };
}
