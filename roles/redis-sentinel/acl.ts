/**
 * The ACL users (pure): no shared password anywhere. `default` is off; each client gets its
 * own user with only the commands it needs (the Sentinel and replication sets are the ones
 * Redis documents; the exporter's is read-only and cannot read the config: CONFIG GET would
 * show masterauth).
 */
import { z, Secret, vaultSecret } from 'infra';

/** Where the secrets go: every host of the role needs them, Sentinel-only hosts too. */
export const SECRETS_FILE = 'group_vars/all.yaml (or a group holding every Redis and Sentinel host)';
export const secret = (name: string) => vaultSecret(name, { file: SECRETS_FILE });

/** An application user: `@dangerous` (FLUSHALL, CONFIG, KEYS, DEBUG, ...) is never granted. */
export const appUser = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
    password: secret('redis_app_users[].password'),
    keys: z.array(z.string().regex(/^(~|%R~|%W~|%RW~)\S+$/, 'a key pattern such as ~app:*')).default(['~*']),
    channels: z.array(z.string().regex(/^&\S+$/, 'a channel pattern such as &events:*')).default([]),
    commands: z.array(z.string().regex(/^[+-][@A-Za-z0-9|_-]+$/, 'a command rule such as +@read')).default(['+@all', '-@dangerous']),
  })
  .strict()
  .refine((u) => !grantsDangerous(u.commands), {
    message: 'an application user must not get @dangerous commands: end +@all with -@dangerous, and never add +@dangerous',
    path: ['commands'],
  });
export type AppUser = z.infer<typeof appUser>;

/** True when the rules leave any @dangerous command allowed by category (+@all not followed by -@dangerous). */
export function grantsDangerous(rules: string[]): boolean {
  let dangerous = false;
  for (const r of rules) {
    if (r === '+@all' || r === '+@dangerous') dangerous = true;
    if (r === '-@all' || r === '-@dangerous') dangerous = false;
  }
  return dangerous;
}

export const SYSTEM_USERS = ['default', 'replication', 'sentinel', 'monitoring'] as const;

/** What a replica needs from its master (redis.io "Replication" ACL). */
const REPLICATION_RULES = ['-@all', '+psync', '+replconf', '+ping'];
/** What Sentinel needs on every Redis server (redis.io "Sentinel" ACL). */
const SENTINEL_RULES = ['-@all', '+multi', '+slaveof', '+ping', '+exec', '+subscribe', '+config|rewrite', '+role', '+publish', '+info', '+client|setname', '+client|kill', '+script|kill'];
/** What redis_exporter reads: INFO, SLOWLOG, LATENCY; never CONFIG (it holds masterauth). */
const MONITORING_RULES = ['-@all', '+ping', '+info', '+client|setname', '+slowlog|get', '+slowlog|len', '+latency|latest', '+select'];

export interface AclVars {
  redis_admin_user: string;
  redis_admin_password: Secret;
  redis_replication_password: Secret;
  redis_sentinel_password: Secret;
  redis_monitoring_password: Secret;
  redis_app_users: AppUser[];
}

/** Every user of the aclfile, in the redis.acl module's terms. */
export function aclUsers(v: AclVars) {
  return [
    { name: 'default', enabled: false, commands: ['-@all'] },
    { name: v.redis_admin_user, passwords: [v.redis_admin_password], keys: ['~*'], channels: ['&*'], commands: ['+@all'] },
    { name: 'replication', passwords: [v.redis_replication_password], commands: REPLICATION_RULES },
    { name: 'sentinel', passwords: [v.redis_sentinel_password], channels: ['&*'], commands: SENTINEL_RULES },
    { name: 'monitoring', passwords: [v.redis_monitoring_password], commands: MONITORING_RULES },
    ...v.redis_app_users.map((u) => ({ name: u.name, passwords: [u.password], keys: u.keys, channels: u.channels, commands: u.commands })),
  ];
}
