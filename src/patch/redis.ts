/**
 * redis-sentinel: replicas first, then the master, after a Sentinel failover away from it —
 * the role redis-sentinel's cluster (its variables: redis_master_name, redis_sentinel_group,
 * redis_sentinel_port, redis_tls). Who is master is what the Sentinels say now, never the
 * inventory. Sentinels take no password (the role's setup), so nothing secret is needed.
 *
 *   replica: no traffic to move; back when Sentinel lists it as a linked replica again
 *   master:  SENTINEL FAILOVER on a Sentinel, wait until the Sentinels name another master and
 *            list this host as its linked replica; patch; back when it is linked again
 */
import { quote, sh } from '../shell/quote.js';
import { parseMasterAddr, agreedMaster, type Addr } from '../modules/redis-parse.js';
import type { PatchGroup } from './policy.js';
import { waitUntil, type Remote } from './remote.js';
import type { Strategy } from './strategy.js';

/** The role's client CA (roles/redis-sentinel/tls.ts). */
const REDIS_CA = '/etc/ssl/redis/ca.crt';
const LINK_TIMEOUT_MS = 120_000;

interface Settings {
  name: string;
  sentinels: string[];
  port: number;
  tls: boolean;
  failoverTimeoutMs: number;
}

/** `SENTINEL REPLICAS` in redis-cli's plain output: field/value lines, a replica starting at "name". */
export function parseReplicas(stdout: string): Record<string, string>[] {
  const lines = stdout.split('\n').map((l) => l.trim());
  const out: Record<string, string>[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    if (lines[i] === 'name') out.push({});
    if (out.length) out[out.length - 1][lines[i]] = lines[i + 1];
  }
  return out;
}

/** A replica Sentinel sees as healthy: flags exactly "slave", link ok. */
export const linked = (r: Record<string, string> | undefined): boolean => r?.flags === 'slave' && r['master-link-status'] === 'ok';

export function redisSentinel(remote: Remote, group: PatchGroup): Strategy {
  const settings = (): Settings => {
    const v = remote.vars(group.hosts[0]);
    const sentinelGroup = typeof v.redis_sentinel_group === 'string' ? v.redis_sentinel_group : 'sentinel';
    const sentinels = remote.hosts(sentinelGroup);
    if (sentinels.length === 0) throw new Error(`strategy redis-sentinel: no Sentinel in group ${sentinelGroup}`);
    return {
      name: typeof v.redis_master_name === 'string' ? v.redis_master_name : 'main',
      sentinels,
      port: typeof v.redis_sentinel_port === 'number' ? v.redis_sentinel_port : 26379,
      tls: (v.redis_tls as { enabled?: boolean } | undefined)?.enabled === true,
      failoverTimeoutMs: typeof v.redis_sentinel_failover_timeout_ms === 'number' ? v.redis_sentinel_failover_timeout_ms : 60_000,
    };
  };
  /** A Sentinel command run on the Sentinel's own host, at its own address. */
  const ask = (s: Settings, sentinel: string, args: string[]) =>
    remote.run(sentinel, `timeout 5 redis-cli -h ${quote(remote.address(sentinel))} -p ${s.port}${s.tls ? sh` --tls --cacert ${REDIS_CA}` : ''} ${args.map(quote).join(' ')}`);

  /** The master most Sentinels name (an even split: a failover is under way, an error). */
  async function master(s: Settings): Promise<string> {
    const answers = await Promise.all(s.sentinels.map(async (x) => {
      const r = await ask(s, x, ['SENTINEL', 'get-master-addr-by-name', s.name]);
      return r.code === 0 ? parseMasterAddr(r.stdout) : null;
    }));
    const agreed = agreedMaster(answers);
    if (!agreed) throw new Error(`the Sentinels (${s.sentinels.join(', ')}) do not agree on a master of "${s.name}" (a failover under way, or none answers)`);
    return hostAt(agreed.master);
  }
  const hostAt = (a: Addr): string => {
    const h = group.hosts.find((x) => remote.address(x) === a.ip) ?? remote.hosts('all').find((x) => remote.address(x) === a.ip);
    if (!h) throw new Error(`the Sentinels name ${a.ip}:${a.port} master, which is no inventory host`);
    return h;
  };
  async function replicas(s: Settings): Promise<Map<string, Record<string, string>>> {
    const res = await ask(s, s.sentinels[0], ['SENTINEL', 'REPLICAS', s.name]);
    if (res.code !== 0) throw new Error(`SENTINEL REPLICAS ${s.name} on ${s.sentinels[0]}: ${res.stderr.trim() || `exit ${res.code}`}`);
    const out = new Map<string, Record<string, string>>();
    for (const rep of parseReplicas(res.stdout)) {
      const h = group.hosts.find((x) => remote.address(x) === rep.ip);
      if (h) out.set(h, rep);
    }
    return out;
  }
  const waitLinked = (s: Settings, host: string, timeoutMs: number) =>
    waitUntil(() => `Sentinel does not list ${host} as a linked replica of "${s.name}"`, timeoutMs, async () => linked((await replicas(s)).get(host)), 1000);

  return {
    describe: 'replicas first; the master last, after a Sentinel failover away from it',
    helpers: () => settings().sentinels.filter((h) => !group.hosts.includes(h)),
    async order(hosts) {
      const m = await master(settings());
      return [...hosts.filter((h) => h !== m), ...hosts.filter((h) => h === m)];
    },
    async guard([host]) {
      const s = settings();
      const m = await master(s);
      const reps = await replicas(s);
      const others = group.hosts.filter((h) => h !== host && h !== m);
      const unhealthy = others.filter((h) => !linked(reps.get(h)));
      if (unhealthy.length) throw new Error(`replica(s) ${unhealthy.join(', ')} not linked (Sentinel: ${unhealthy.map((h) => reps.get(h)?.flags ?? 'not listed').join(', ')}): never two members down at once`);
      if (host === m && others.length === 0) throw new Error(`${host} is the master and has no replica to fail over to`);
    },
    async takeOut(host) {
      const s = settings();
      if ((await master(s)) !== host) return 'replica: no traffic to move';
      const r = await ask(s, s.sentinels[0], ['SENTINEL', 'FAILOVER', s.name]);
      if (r.code !== 0 || !/^OK/.test(r.stdout.trim())) throw new Error(`SENTINEL FAILOVER ${s.name} on ${s.sentinels[0]}: ${(r.stdout + r.stderr).trim()}`);
      const next = await waitUntil(() => `the Sentinels still name ${host} master of "${s.name}"`, s.failoverTimeoutMs, async () => {
        const m = await master(s).catch(() => host);
        return m !== host ? m : undefined;
      }, 1000);
      await waitLinked(s, host, LINK_TIMEOUT_MS);
      return `Sentinel failover: ${next} is master now, ${host} its replica`;
    },
    async putBack(host) {
      const s = settings();
      await waitLinked(s, host, LINK_TIMEOUT_MS);
      return `linked replica of ${await master(s)}`;
    },
  };
}
