/**
 * Drill `redis-failover`: a Sentinel failover under write load, measured from the client's side.
 *
 *   1. a load marker on a Sentinel host (a systemd-run unit) asks the local Sentinel for the
 *      master every 100 ms and SETs a numbered key there as the admin user; each answer is
 *      logged "ok|err seq host-ms master" (the password reaches it in a 0600 file, never argv);
 *   2. the disaster: `SENTINEL FAILOVER <name>` (the master is demoted, a replica promoted);
 *   3. RTO = the failover's start → the first write acknowledged by the new master;
 *   4. after a few more writes the marker stops; RPO = acknowledged keys missing on the new
 *      master (and the span they cover); the drill's keys are removed.
 *
 * Afterwards the master is another host: the inventory disagrees until redis_master and
 * redis_replica are swapped in hosts.yaml (or a second drill fails back). Both times are
 * on the Sentinel host's clock.
 */
import { selectHosts } from '../inventory/limit.js';
import type { Inventory } from '../inventory/types.js';
import { UserError } from '../errors.js';
import { Secret } from '../secrets/secret.js';
import { quote, sh } from '../shell/quote.js';
import type { Measured } from './objectives.js';
import type { Drill, DrillContext } from './types.js';

const WRITE_INTERVAL_MS = 100;
const WAIT_FOR_NEW_MASTER_MS = 120_000;
/** How long the drill waits for the Sentinel to see a replica it can promote (before the disaster, outside the RTO). */
const REPLICA_READY_MS = 30_000;
const AFTER_RECOVERY_MS = 2000;

interface RedisSettings {
  masterName: string;
  port: number;
  sentinelPort: number;
  adminUser: string;
  adminPassword: Secret;
}

function settingsOf(vars: Record<string, unknown>, host: string): RedisSettings {
  const tls = vars.redis_tls as { enabled?: boolean } | undefined;
  if (tls?.enabled) throw new UserError(`drill redis-failover: ${host} has redis_tls.enabled`, { hint: 'the drill speaks plain TCP to Redis; TLS is not supported by it yet' });
  const password = vars.redis_admin_password;
  if (!(password instanceof Secret)) throw new UserError(`drill redis-failover: ${host} has no redis_admin_password (a !vault value)`, { hint: 'the drill writes as the admin user of role redis-sentinel: give the vault password (--vault-password-file)' });
  return {
    masterName: str(vars.redis_master_name, 'main'),
    port: num(vars.redis_port, 6379),
    sentinelPort: num(vars.redis_sentinel_port, 26379),
    adminUser: str(vars.redis_admin_user, 'admin'),
    adminPassword: password,
  };
}

const str = (v: unknown, d: string) => (typeof v === 'string' ? v : d);
const num = (v: unknown, d: number) => (typeof v === 'number' ? v : d);

export const redisFailoverDrill: Drill = {
  name: 'redis-failover',
  describe: 'Sentinel failover under write load: RTO until the new master takes writes, RPO = acknowledged writes lost',
  hosts(inventory, limit) {
    const group = (h: string) => str(inventory.hosts.get(h)!.vars.redis_sentinel_group, 'sentinel');
    const all = [...inventory.hosts.keys()];
    const sentinels = all.filter((h) => inventory.hosts.get(h)!.groups.includes(group(h)));
    const picked = limit.length ? limit.flatMap((p) => selectHosts(inventory, p)).filter((h) => sentinels.includes(h)) : sentinels;
    if (!picked.length) throw new UserError('drill redis-failover: no Sentinel host selected', { hint: 'the inventory needs hosts in group sentinel (role redis-sentinel); -l picks the one the marker runs on' });
    settingsOf(inventory.hosts.get(picked[0])!.vars, picked[0]);
    return [picked[0]];
  },
  run: (ctx) => runRedisFailover(ctx),
};

export interface Write {
  ok: boolean;
  seq: number;
  ms: number;
  master: string;
}

/** "ok|err seq host-ms master" lines; a torn last line is ignored. */
export function parseWrites(text: string): Write[] {
  return text
    .split('\n')
    .map((l) => /^(ok|err) (\d+) (\d{13}) ?(\S*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ ok: m[1] === 'ok', seq: Number(m[2]), ms: Number(m[3]), master: m[4] }));
}

/**
 * Writes the load marker must have acknowledged before the disaster: the drill measures RPO
 * under load, not on an idle server (a fixed 1.5 s gave a slow host 8 writes, not 15).
 */
export const WRITES_BEFORE_DISASTER = 10;
const WRITE_LOAD_MS = 60_000;

/** Waits until the marker's log (as read()) shows WRITES_BEFORE_DISASTER acknowledged writes. */
export async function waitForWriteLoad(read: () => Promise<string>, timeoutMs = WRITE_LOAD_MS, pollMs = 200): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const acked = parseWrites(await read()).filter((w) => w.ok).length;
    if (acked >= WRITES_BEFORE_DISASTER) return;
    if (Date.now() > end) {
      throw new Error(`the load marker had ${acked} write(s) acknowledged after ${timeoutMs / 1000} s (${WRITES_BEFORE_DISASTER} before the disaster): does the server take writes?`);
    }
    await sleep(pollMs);
  }
}

/** The first write the new master acknowledged at or after the failover started. */
export function firstOnNewMaster(writes: Write[], oldMaster: string, startMs: number): Write | undefined {
  return writes.find((w) => w.ok && w.master !== oldMaster && w.master !== '' && w.ms >= startMs);
}

/** Acknowledged writes missing afterwards, and the span from the last write kept before the first lost one to the last lost one. */
export function lostWrites(writes: Write[], present: Set<number>): { lost: Write[]; rpoMs: number } {
  const acked = writes.filter((w) => w.ok);
  const lost = acked.filter((w) => !present.has(w.seq));
  if (!lost.length) return { lost, rpoMs: 0 };
  const firstLost = lost[0].ms;
  const keptBefore = acked.filter((w) => present.has(w.seq) && w.ms < firstLost).at(-1);
  return { lost, rpoMs: lost[lost.length - 1].ms - (keptBefore?.ms ?? firstLost - WRITE_INTERVAL_MS) };
}

async function runRedisFailover(ctx: DrillContext): Promise<Measured> {
  const [host] = ctx.hosts;
  const r = settingsOf(ctx.inventory.hosts.get(host)!.vars, host);
  const dir = `/run/infra-drill/${ctx.runId}`;
  const unit = `infra-drill-marker-${ctx.runId}`;
  const prefix = `infra-drill:${ctx.runId}:`;
  const run = async (what: string, cmd: string, timeoutMs = 60_000): Promise<string> => {
    const res = await ctx.run(host, cmd, { timeoutMs });
    if (res.code !== 0) throw new Error(`${what} failed on ${host} (exit ${res.code}): ${(res.stderr || res.stdout).trim().slice(-800)}`);
    return res.stdout;
  };
  const askMaster = sh`redis-cli -p ${r.sentinelPort} SENTINEL get-master-addr-by-name ${r.masterName}`;
  const masterNow = async (): Promise<string> => (await run('asking the Sentinel for the master', askMaster)).trim().split('\n')[0] ?? '';
  const asAdmin = (target: string) => sh`REDISCLI_AUTH=$(cat ${`${dir}/auth`}) redis-cli --no-auth-warning --user ${r.adminUser} -h ${target} -p ${r.port}`;

  await run('preparing the marker', sh`mkdir -p -m 0700 ${dir}`);
  await ctx.put(host, `${dir}/auth`, r.adminPassword.reveal(), { mode: '0600', owner: 'root', group: 'root' });
  const oldMaster = await masterNow();
  if (!oldMaster) throw new Error(`the Sentinel on ${host} names no master for "${r.masterName}"`);

  const loop = [
    sh`export REDISCLI_AUTH="$(cat ${`${dir}/auth`})"`,
    'i=0',
    'while :; do',
    '  i=$((i+1))',
    `  m=$(${askMaster} 2>/dev/null | head -n 1)`,
    sh`  if [ -n "$m" ] && [ "$(timeout 2 redis-cli --no-auth-warning --user ${r.adminUser} -h "$m" -p ${r.port} SET ${prefix}"$i" "$(date +%s%3N)" 2>&1)" = OK ]; then s=ok; else s=err; fi`,
    sh`  echo "$s $i $(date +%s%3N) $m" >> ${`${dir}/writes`}`,
    `  sleep ${WRITE_INTERVAL_MS / 1000}`,
    'done',
  ].join('\n');
  await run('starting the load marker', sh`systemd-run --quiet --collect --unit ${unit} /bin/sh -c ${loop}`);
  ctx.step(host, `load marker: a SET every ${WRITE_INTERVAL_MS} ms to the master the Sentinel names (unit ${unit})`, true);
  try {
    await waitForWriteLoad(() => run('reading the marker', sh`cat ${`${dir}/writes`} 2>/dev/null; true`));
    // Right after a (re)start the Sentinel may see no replica it can promote yet ("NOGOODSLAVE"):
    // ask again for a while (before the disaster, outside the RTO).
    const ready = Date.now() + REPLICA_READY_MS;
    let at: string | undefined;
    let answer: string | undefined;
    for (;;) {
      [at, answer] = (await run('SENTINEL FAILOVER', sh`date +%s%3N; redis-cli -p ${r.sentinelPort} SENTINEL FAILOVER ${r.masterName}`)).trim().split('\n');
      if (answer?.trim() === 'OK') break;
      if (!/NOGOODSLAVE/.test(answer ?? '') || Date.now() > ready) throw new Error(`SENTINEL FAILOVER ${r.masterName} answered: ${answer ?? '(nothing)'}`);
      await sleep(1000);
    }
    const start = Number(at);
    ctx.step(host, `disaster: SENTINEL FAILOVER ${r.masterName} (master was ${oldMaster})`, true);

    let recovered: Write | undefined;
    const end = Date.now() + WAIT_FOR_NEW_MASTER_MS;
    while (!recovered) {
      if (Date.now() > end) throw new Error(`no write succeeded on a new master within ${WAIT_FOR_NEW_MASTER_MS / 1000} s of the failover`);
      await sleep(200);
      recovered = firstOnNewMaster(parseWrites(await run('reading the marker', sh`cat ${`${dir}/writes`}`)), oldMaster, start);
    }
    await sleep(AFTER_RECOVERY_MS);
    const writes = parseWrites(await run('stopping the marker', sh`systemctl stop ${unit}; cat ${`${dir}/writes`}`));
    const newMaster = recovered.master;
    ctx.step(host, `recovered: ${newMaster} took the first write ${recovered.ms - start} ms after the failover started`, false);

    // What the new master holds of the drill's keys (replication of the last writes may lag a moment: SCAN after the marker stopped).
    const keys = await run('reading the new master', `${asAdmin(newMaster)} --scan --pattern ${quote(`${prefix}*`)}`);
    const present = new Set(keys.split('\n').filter(Boolean).map((k) => Number(k.slice(prefix.length))));
    const { lost, rpoMs } = lostWrites(writes, present);
    return {
      rtoMs: recovered.ms - start,
      rpoMs,
      acknowledged: writes.filter((w) => w.ok).length,
      lost: lost.length,
      notes: [`the master is now ${newMaster} (was ${oldMaster}): swap redis_master and redis_replica in hosts.yaml, or fail back with another drill`],
    };
  } finally {
    const cleanup = [
      sh`systemctl stop ${unit} 2>/dev/null`,
      `m=$(${askMaster} | head -n 1)`,
      sh`if [ -n "$m" ]; then (export REDISCLI_AUTH="$(cat ${`${dir}/auth`})"; redis-cli --no-auth-warning --user ${r.adminUser} -h "$m" -p ${r.port} --scan --pattern ${`${prefix}*`} | xargs -r -n 100 redis-cli --no-auth-warning --user ${r.adminUser} -h "$m" -p ${r.port} UNLINK >/dev/null); fi`,
      sh`rm -rf ${dir}`,
    ].join('\n');
    await ctx.run(host, cleanup).catch(() => undefined);
  }
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
