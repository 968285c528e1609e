/**
 * Drill `postgres-failover`: the primary crashes under write load, the replica takes over the
 * way playbooks/dr/postgres-failover.yaml does it, and the old primary comes back as a replica.
 *
 *   1. a table for the drill's writes on the primary; a load marker on each of the two members
 *      (a systemd-run unit) INSERTs a numbered row into its local server every 100 ms and logs
 *      "ok|err seq host-ms host" — a write is acknowledged when its COMMIT returned (the old
 *      primary's before the crash, the new primary's after the promotion; a standby refuses them);
 *   2. the disaster: the primary's server is killed (SIGKILL to every process of its unit);
 *   3. the failover: `infra-pg-dr fence` on the old primary (stopped, unit masked,
 *      standby.signal, <data>.fenced), `infra-pg-dr promote` on the replica;
 *   4. RTO = the kill → the first write acknowledged by the new primary, both on the replica's
 *      clock; RPO = the old primary's acknowledged writes missing on the new primary (and the
 *      span they cover, on the old primary's clock);
 *   5. `infra-pg-dr rejoin` makes the old primary a replica of the new one (pg_rewind, else a
 *      fresh pg_basebackup) and the drill checks it streams; the drill's table is dropped.
 *      With synchronous replication and no other replica to confirm commits, the new primary's
 *      writes wait for the old one: it rejoins before step 4, inside the RTO.
 *
 * Afterwards the primary is the other host: the inventory disagrees (the role stops at its
 * cluster guard) until the two hosts swap groups in hosts.yaml — the note says so.
 */
import { selectHosts } from '../inventory/limit.js';
import type { Inventory } from '../inventory/types.js';
import { UserError } from '../errors.js';
import { quote, sh } from '../shell/quote.js';
import type { Measured } from './objectives.js';
import { firstOnNewMaster, lostWrites, parseWrites, waitForWriteLoad } from './redis-failover.js';
import type { Drill, DrillContext } from './types.js';

const WRITE_INTERVAL_MS = 100;
const WAIT_FOR_NEW_PRIMARY_MS = 300_000;
const AFTER_RECOVERY_MS = 2000;
const DR = '/usr/local/sbin/infra-pg-dr';

interface Cluster {
  primary: string;
  replica: string;
  port: number;
  service: string;
  syncReplicas: number;
  /** Replicas besides the one promoted: the new primary's synchronous standbys-to-be. */
  otherReplicas: number;
}

const str = (v: unknown, d: string) => (typeof v === 'string' ? v : d);
const num = (v: unknown, d: number) => (typeof v === 'number' ? v : d);

/** The primary and the replica to promote (the first replica --limit selects), from the inventory. */
export function clusterOf(inventory: Inventory, limit: string[]): Cluster {
  const all = [...inventory.hosts.keys()];
  const varsOf = (h: string) => inventory.hosts.get(h)!.vars;
  const inGroup = (h: string, key: string, d: string) => inventory.hosts.get(h)!.groups.includes(str(varsOf(h)[key], d));
  const primaries = all.filter((h) => inGroup(h, 'postgres_primary_group', 'postgres_primary'));
  const replicas = all.filter((h) => inGroup(h, 'postgres_replica_group', 'postgres_replica'));
  if (primaries.length !== 1) {
    throw new UserError(`drill postgres-failover: the inventory names ${primaries.length ? primaries.join(', ') : 'no host'} as the primary (group postgres_primary), one is needed`, { hint: 'the drill fails over the cluster of role postgres: one host in postgres_primary, replicas in postgres_replica' });
  }
  const picked = limit.length ? limit.flatMap((p) => selectHosts(inventory, p)).filter((h) => replicas.includes(h)) : replicas;
  if (!picked.length) throw new UserError('drill postgres-failover: no replica selected to promote', { hint: 'the inventory needs a host in group postgres_replica; -l picks the one to promote' });
  const v = varsOf(primaries[0]);
  return {
    primary: primaries[0],
    replica: picked[0],
    port: num(v.postgres_port, 5432),
    service: `postgresql@${str(v.postgres_version, '15')}-${str(v.postgres_cluster, 'main')}`,
    syncReplicas: num(v.postgres_sync_replicas, 0),
    otherReplicas: replicas.length - 1,
  };
}

export const postgresFailoverDrill: Drill = {
  name: 'postgres-failover',
  describe: 'the primary killed under write load, fenced; the replica promoted; RTO until it takes writes, RPO = committed writes lost; the old primary rejoins as a replica',
  hosts(inventory, limit) {
    const c = clusterOf(inventory, limit);
    return [c.replica, c.primary];
  },
  run: (ctx) => runPostgresFailover(ctx),
};

async function runPostgresFailover(ctx: DrillContext): Promise<Measured> {
  const [replica, primary] = ctx.hosts;
  const c = clusterOf(ctx.inventory, [replica]);
  const dir = `/run/infra-drill/${ctx.runId}`;
  const unit = `infra-drill-marker-${ctx.runId}`;
  const table = `infra_drill_${ctx.runId}`;
  const run = async (host: string, what: string, cmd: string, timeoutMs = 120_000): Promise<string> => {
    const r = await ctx.run(host, cmd, { timeoutMs });
    if (r.code !== 0) throw new Error(`${what} failed on ${host} (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-800)}`);
    return r.stdout;
  };
  const psqlCmd = sh`runuser -u postgres -- psql -X -A -t -v ON_ERROR_STOP=1 -p ${c.port} -d postgres -c`;
  const psql = (sql: string) => `cd / && ${psqlCmd} ${quote(sql)}`;
  const now = async (host: string) => Number((await run(host, 'reading the clock', 'date +%s%3N')).trim());

  for (const h of [replica, primary]) await run(h, 'the role\'s failover tools', `test -x ${quote(DR)} || { echo ${quote(`${DR} missing: apply the postgres role first`)} >&2; exit 1; }`);
  const states = { [primary]: (await run(primary, 'infra-pg-dr state', sh`${DR} state`)).trim(), [replica]: (await run(replica, 'infra-pg-dr state', sh`${DR} state`)).trim() };
  if (states[primary] !== 'primary' || states[replica] !== 'standby') {
    throw new Error(`the cluster is not as the inventory says: ${primary} is ${states[primary]}, ${replica} is ${states[replica]} (expected primary and standby)`);
  }
  await run(primary, 'creating the drill\'s table', psql(`create table "${table}" (host text not null, seq int not null, primary key (host, seq))`));
  // The table must exist on the replica before its marker starts (else its writes fail for the wrong reason).
  await until(async () => (await ctx.run(replica, psql(`select to_regclass('"${table}"') is not null`))).stdout.trim() === 't', 30_000, `the drill's table to reach ${replica}`);

  const loop = (host: string) =>
    [
      'cd / && i=0',
      'while :; do',
      '  i=$((i+1))',
      // The row's number follows the quoted SQL in the same shell word: ... values ('db1', 42)
      `  if timeout 3 ${psqlCmd} ${quote(`insert into "${table}" values ('${host}', `)}"$i)" >/dev/null 2>&1; then s=ok; else s=err; fi`,
      sh`  echo "$s $i $(date +%s%3N) ${host}" >> ${`${dir}/writes`}`,
      `  sleep ${WRITE_INTERVAL_MS / 1000}`,
      'done',
    ].join('\n');
  const markers = [primary, replica];
  const stopMarkers = () => Promise.all(markers.map((h) => ctx.run(h, sh`systemctl stop ${unit} 2>/dev/null; true`)));
  try {
    for (const h of markers) await run(h, 'starting the load marker', sh`mkdir -p -m 0700 ${dir} && systemd-run --quiet --collect --unit ${unit} /bin/sh -c ${loop(h)}`);
    ctx.step(primary, `load marker on ${markers.join(' and ')}: an INSERT every ${WRITE_INTERVAL_MS} ms into the local server (unit ${unit}; a standby refuses it)`, true);
    await waitForWriteLoad(() => run(primary, 'reading the marker', sh`cat ${`${dir}/writes`} 2>/dev/null; true`));

    const start = await now(replica);
    await run(primary, 'the disaster (SIGKILL to the server)', sh`systemctl kill --signal=SIGKILL -- ${c.service}`);
    ctx.step(primary, `disaster: every process of ${c.service} killed (SIGKILL)`, true);

    ctx.step(primary, (await run(primary, 'fencing', sh`${DR} fence ${replica} 2>&1`, 600_000)).trim().split('\n').at(-1) ?? 'fenced', true);
    ctx.step(replica, (await run(replica, 'promoting', sh`${DR} promote 2>&1`, 600_000)).trim().split('\n').at(-1) ?? 'promoted', true);
    // Synchronous replication with too few other replicas: the new primary's commits wait for
    // the old one to stream again, so it rejoins first and the rejoin counts in the RTO.
    const rejoinFirst = c.syncReplicas > c.otherReplicas;
    const rejoin = async () => {
      ctx.step(primary, (await run(primary, 'rejoining', sh`${DR} rejoin ${replica} 2>&1`, 6 * 3600_000)).trim().split('\n').at(-1) ?? 'rejoined', true);
      await run(primary, 'checking the rejoined server', sh`${DR} follows ${replica}`);
      ctx.step(primary, `${primary} is a standby streaming from ${replica}`, false);
    };
    if (rejoinFirst) await rejoin();

    const end = Date.now() + WAIT_FOR_NEW_PRIMARY_MS;
    let recovered;
    while (!(recovered = firstOnNewMaster(parseWrites(await run(replica, 'reading the marker', sh`cat ${`${dir}/writes`}`)), primary, start))) {
      if (Date.now() > end) throw new Error(`no write succeeded on ${replica} within ${WAIT_FOR_NEW_PRIMARY_MS / 1000} s of the crash`);
      await sleep(200);
    }
    ctx.step(replica, `recovered: ${replica} acknowledged the first write ${recovered.ms - start} ms after the crash`, false);
    await sleep(AFTER_RECOVERY_MS);
    await stopMarkers();
    const readLog = async (h: string) => parseWrites(await run(h, 'reading the marker', sh`cat ${`${dir}/writes`}`));
    const [oldWrites, newWrites] = [await readLog(primary), await readLog(replica)];
    const kept = await run(replica, 'reading the new primary', psql(`select seq from "${table}" where host = '${primary}'`));
    const { lost, rpoMs } = lostWrites(oldWrites, new Set(kept.split('\n').filter(Boolean).map(Number)));

    if (!rejoinFirst) await rejoin();
    return {
      rtoMs: recovered.ms - start,
      rpoMs,
      acknowledged: [...oldWrites, ...newWrites].filter((w) => w.ok).length,
      lost: lost.length,
      notes: [
        `the primary is now ${replica} (was ${primary}): in hosts.yaml make ${replica} the only host of postgres_primary and move ${primary} to postgres_replica, then re-apply playbooks/site.yaml`,
        `RTO covers the crash to the first write on the new primary with the failover started at once; noticing and deciding come on top in an incident`,
        c.syncReplicas > 0
          ? `synchronous replication (postgres_sync_replicas ${c.syncReplicas}): no acknowledged write may be lost${rejoinFirst ? `; with ${c.otherReplicas} other replica(s) the new primary's writes waited for ${primary} to rejoin (in the RTO)` : ''}`
          : 'asynchronous replication: what the replica had not received is lost (normally under a second; from the archive alone, at most archive_timeout)',
      ],
    };
  } finally {
    await stopMarkers().catch(() => undefined);
    for (const h of markers) await ctx.run(h, sh`rm -rf ${dir}`).catch(() => undefined);
    // Wherever the primary is now, the drill's table goes (the replica receives the drop).
    for (const h of [replica, primary]) await ctx.run(h, `if [ "$(${quote(DR)} state)" = primary ]; then ${psql(`drop table if exists "${table}"`)}; fi`).catch(() => undefined);
  }
}

async function until(probe: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(200);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
