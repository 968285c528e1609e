/**
 * redis-sentinel: Redis 7 master + replicas with Sentinel failover, the way the Redis docs
 * set it up — bound to the private address, ACL users instead of a shared password, AOF +
 * RDB persistence, maxmemory from the host's RAM, redis_exporter — and written never to
 * fight the cluster: the files Redis and Sentinel rewrite at run time are changed key by key
 * or through Redis itself, and replicas follow the master the Sentinels name, not the one
 * the inventory remembers.
 */
import { defineRole, z, apt, files, systemd, sysctl, meta, redis, command, UserError, Secret, privateAddress } from 'infra';
import { aclUsers, appUser, secret, SYSTEM_USERS } from './acl.js';
import { topology } from './topology.js';
import { tlsVars, tlsTasks, redisTlsSettings, sentinelTlsSettings, clientTls, localHost, exporterTarget } from './tls.js';

const port = z.number().int().min(1).max(65535);

export const MAXMEMORY_POLICIES = ['noeviction', 'allkeys-lru', 'allkeys-lfu', 'allkeys-random', 'volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl'] as const;

export const vars = z.object({
  redis_master_name: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('main'),
  redis_master_group: z.string().default('redis_master'),
  redis_replica_group: z.string().default('redis_replica'),
  redis_sentinel_group: z.string().default('sentinel'),
  redis_port: port.default(6379),
  /** Share of the host's RAM for data; the rest is for fork copy-on-write (RDB, AOF rewrite) and the OS. */
  redis_maxmemory_percent: z.number().int().min(10).max(90).default(50),
  /** A fixed size instead (MiB). */
  redis_maxmemory_mb: z.number().int().positive().optional(),
  redis_maxmemory_policy: z.enum(MAXMEMORY_POLICIES).default('noeviction'),
  redis_appendfsync: z.enum(['everysec', 'always', 'no']).default('everysec'),
  /** RDB snapshot points: "<seconds> <changes>" pairs. */
  redis_save: z.string().regex(/^(\d+ \d+)( \d+ \d+)*$/, 'pairs of "<seconds> <changes>"').default('3600 1 300 100 60 10000'),
  redis_admin_user: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('admin'),
  redis_admin_password: secret('redis_admin_password'),
  redis_replication_password: secret('redis_replication_password'),
  redis_sentinel_password: secret('redis_sentinel_password'),
  redis_monitoring_password: secret('redis_monitoring_password'),
  redis_app_users: z.array(appUser).default([]),
  /** Allow making a replica of a host that is a master holding keys while no Sentinel knows the cluster. */
  redis_replica_discard_data: z.boolean().default(false),
  redis_sentinel_port: port.default(26379),
  redis_sentinel_quorum: z.number().int().min(1).default(2),
  redis_sentinel_down_after_ms: z.number().int().min(100).default(5000),
  redis_sentinel_failover_timeout_ms: z.number().int().min(1000).default(60000),
  redis_sentinel_parallel_syncs: z.number().int().min(1).default(1),
  redis_exporter_port: port.default(9121),
  redis_tls: tlsVars,
  /** Ubuntu only: the ASCII-armored key of packages.redis.io (https://packages.redis.io/gpg), pinned in the inventory. */
  redis_upstream_repo_key: z.string().optional(),
});
export type RedisVars = z.infer<typeof vars>;

const CONF = '/etc/redis/redis.conf';
const ACLFILE = '/etc/redis/users.acl';
const SENTINEL_CONF = '/etc/redis/sentinel.conf';
const EXPORTER_PASSWORDS = '/etc/prometheus-redis-exporter/passwords.json';

export default defineRole({
  name: 'redis-sentinel',
  vars,
  tasks: ({ vars: v, host, hosts }) => {
    const t = topology(v, hosts);
    const isRedis = host.groups.includes(v.redis_master_group) || host.groups.includes(v.redis_replica_group);
    const isSentinel = host.groups.includes(v.redis_sentinel_group);
    const clash = v.redis_app_users.find((u) => (SYSTEM_USERS as readonly string[]).includes(u.name) || u.name === v.redis_admin_user);
    if (clash) throw new UserError(`role redis-sentinel: redis_app_users: "${clash.name}" is a user the role defines itself`, { hint: `pick another name (reserved: ${[...SYSTEM_USERS, v.redis_admin_user].join(', ')})` });

    const self = privateAddress({ address: host.address, vars: hostVars(hosts, host.name) });
    const inContainer = host.facts.container !== 'none';
    const admin = { host: localHost(v, self), port: v.redis_port, user: v.redis_admin_user, password: v.redis_admin_password, tls: clientTls(v) };
    const exporter = exporterTarget(v, self);
    const inventoryMaster = t.master;

    const redisTasks = () => [
      // Kernel: fork() for RDB/AOF rewrite needs overcommit (Redis warns at start without it).
      sysctl.param({ name: 'vm.overcommit_memory', value: 1, file: '/etc/sysctl.d/60-redis.conf', live: !inContainer }),
      ...(inContainer ? [meta.skip({ what: 'live vm.overcommit_memory', reason: `vm.* is global to the kernel and read-only in a container (${host.facts.container}); persisted for boot` })] : []),

      // Users: the aclfile first, so that the restart that enables it finds it.
      redis.acl({ path: ACLFILE, users: aclUsers(v), owner: 'redis', group: 'redis', mode: '0640', server: admin }),

      // Our directives in Debian's redis.conf, which Redis itself rewrites (CONFIG REWRITE at failover).
      redis.config({
        path: CONF,
        settings: redisSettings(v, self, host.facts.memoryMb),
        // Users live in the aclfile; Redis refuses to start with `user` lines here as well.
        absent: ['user'],
        owner: 'redis',
        group: 'redis',
        mode: '0640',
        service: 'redis-server',
        live: admin,
      }),
      systemd.service({ name: 'redis-server', enabled: true, state: 'started' }),

      // Replication: the master the Sentinels name now (the inventory's only until they know).
      redis.replication({
        server: admin,
        self: { ip: self, port: v.redis_port },
        masterName: v.redis_master_name,
        inventoryMaster,
        members: t.redis,
        sentinels: t.sentinels,
        sentinelTls: clientTls(v),
        discardData: v.redis_replica_discard_data,
      }),

      // Exporter: its own ACL user, bound to the private address.
      files.directory({ path: '/etc/prometheus-redis-exporter', owner: 'root', group: 'prometheus', mode: '0750' }),
      files.template({
        src: 'exporter-passwords.json.hbs',
        dest: EXPORTER_PASSWORDS,
        owner: 'root',
        group: 'prometheus',
        mode: '0640',
        sensitive: true,
        vars: { addr: exporter.addr, password: v.redis_monitoring_password },
        notify: 'restart redis exporter',
      }),
      files.template({
        src: 'prometheus-redis-exporter.default.hbs',
        dest: '/etc/default/prometheus-redis-exporter',
        owner: 'root',
        group: 'root',
        mode: '0644',
        vars: { listen: `${self}:${v.redis_exporter_port}`, addr: exporter.addr, args: exporter.args, passwords: EXPORTER_PASSWORDS },
        notify: 'restart redis exporter',
      }),
      systemd.service({ name: 'prometheus-redis-exporter', enabled: true, state: 'started' }),
    ];

    const sentinelTasks = () => {
      // No password on Sentinel's own port: the firewall admits only the groups that ask it.
      const statics = { bind: bindList(self), port: String(v.redis_sentinel_port), 'protected-mode': 'no', ...sentinelTlsSettings(v) };
      return [
        systemd.service({ name: 'redis-sentinel', enabled: true, state: 'started' }),
        // Where it listens (address, port, TLS) first, so that we can talk to it: edited with Sentinel stopped.
        redis.config({ path: SENTINEL_CONF, settings: statics, owner: 'redis', group: 'redis', mode: '0640', service: 'redis-sentinel' }),
        // Sentinel owns sentinel.conf: our file once (bootstrap), then SENTINEL SET on the live process.
        redis.sentinel({
          path: SENTINEL_CONF,
          owner: 'redis',
          group: 'redis',
          mode: '0640',
          service: 'redis-sentinel',
          host: localHost(v, self),
          port: v.redis_sentinel_port,
          tls: clientTls(v),
          masterName: v.redis_master_name,
          quorum: v.redis_sentinel_quorum,
          downAfterMs: v.redis_sentinel_down_after_ms,
          failoverTimeoutMs: v.redis_sentinel_failover_timeout_ms,
          parallelSyncs: v.redis_sentinel_parallel_syncs,
          authUser: 'sentinel',
          authPass: v.redis_sentinel_password,
          inventoryMaster,
          peers: t.sentinels.filter((s) => s.name !== host.name),
          bootstrap: { template: 'sentinel.conf.hbs', vars: { statics } },
        }),
      ];
    };

    return [
      ...packageTasks(v, host.facts.os, isRedis, isSentinel),
      confDirOverride,
      ...tlsTasks(v, [...(isRedis ? ['restart redis'] : []), ...(isSentinel ? ['restart redis sentinel'] : [])]),
      ...(isRedis ? redisTasks() : []),
      ...(isSentinel ? sentinelTasks() : []),
    ];
  },
  handlers: {
    'restart redis exporter': systemd.restart('prometheus-redis-exporter'),
    // A renewed TLS certificate is read at start.
    'restart redis': systemd.restart('redis-server'),
    'restart redis sentinel': systemd.restart('redis-sentinel'),
  },
});

/** Debian 12 ships Redis 7.0; Ubuntu 22.04 has 6.0, so Redis 7 comes from packages.redis.io there. */
export function packageTasks(v: RedisVars, os: { id: string; versionId: string; codename: string }, isRedis: boolean, isSentinel: boolean) {
  const names = [...(isRedis ? ['redis-server', 'redis-tools', 'prometheus-redis-exporter'] : []), ...(isSentinel ? ['redis-sentinel', 'redis-tools'] : [])];
  const install = apt.packages({ names: [...new Set(names)] });
  if (os.id === 'debian' && Number(os.versionId) >= 12) return [install];
  if (os.id === 'ubuntu' && os.versionId === '22.04') {
    if (!v.redis_upstream_repo_key) {
      throw new UserError('role redis-sentinel: Ubuntu 22.04 needs Redis 7 from packages.redis.io, and redis_upstream_repo_key is not set', {
        hint: 'pin the repository key in group_vars: redis_upstream_repo_key: | (the output of curl -fsSL https://packages.redis.io/gpg, checked against the fingerprint redis.io publishes)',
      });
    }
    return [apt.repository({ name: 'redis', uris: 'https://packages.redis.io/deb', suites: os.codename, components: ['main'], key: v.redis_upstream_repo_key }), install];
  }
  throw new UserError(`role redis-sentinel: ${os.id} ${os.versionId} is not supported`, { hint: 'Debian 12 (Redis 7.0 from Debian) or Ubuntu 22.04 (Redis 7 from packages.redis.io)' });
}

/**
 * Debian's packages register /etc/redis as redis:redis 2770 (dpkg-statoverride), and infra's
 * put() refuses to write into a directory a group can write. Redis writes there only as its
 * owner (CONFIG REWRITE, ACL SAVE, Sentinel's state): 0750, registered with dpkg so that an
 * upgrade of the package keeps it.
 */
const confDirOverride = command.run({
  name: '/etc/redis redis:redis 0750 (dpkg-statoverride: no group write)',
  cmd: 'dpkg-statoverride --quiet --remove /etc/redis; dpkg-statoverride --update --add redis redis 0750 /etc/redis',
  unless: `[ "$(stat -c '%U %G %a' /etc/redis)" = 'redis redis 750' ] && dpkg-statoverride --list /etc/redis | grep -Eq '^redis redis 0?750 /etc/redis$'`,
});

/** The redis.conf directives this role owns (file syntax). replicaof is Redis's: never here. */
export function redisSettings(v: RedisVars, self: string, memoryMb: number): Record<string, string | Secret> {
  const maxmemoryMb = v.redis_maxmemory_mb ?? Math.max(64, Math.floor((memoryMb * v.redis_maxmemory_percent) / 100));
  return {
    bind: bindList(self),
    'protected-mode': 'yes',
    port: String(v.redis_port),
    aclfile: ACLFILE,
    masteruser: 'replication',
    masterauth: v.redis_replication_password,
    appendonly: 'yes',
    appendfsync: v.redis_appendfsync,
    save: v.redis_save,
    maxmemory: `${maxmemoryMb}mb`,
    'maxmemory-policy': v.redis_maxmemory_policy,
    // Transparent huge pages make fork() copy-on-write slow: Redis turns them off for itself.
    'disable-thp': 'yes',
    'replica-read-only': 'yes',
    ...redisTlsSettings(v),
  };
}

/** The private address, then loopback (for infra and on-call on the host). */
const bindList = (self: string): string => [...new Set([self, '127.0.0.1'])].join(' ');

function hostVars(hosts: (p: string) => { name: string; vars: Record<string, unknown> }[], name: string): Record<string, unknown> {
  return hosts(name).find((h) => h.name === name)?.vars ?? {};
}
