/**
 * The ACL users (pure): no shared password anywhere. `default` is off; each client gets its
 * own user with only the commands it needs (the Sentinel and replication sets are the ones
 * Redis documents; the exporter's is read-only and cannot read the config: CONFIG GET would
 * show masterauth).
 */
import { z, Secret } from 'infra';

/** A required secret: "not set" when missing, refused when written in clear. */
export const vaultValue = z.any().superRefine((v, ctx) => {
  if (v === undefined) ctx.addIssue({ code: z.ZodIssueCode.invalid_type, expected: z.ZodParsedType.object, received: z.ZodParsedType.undefined });
  else if (!(v instanceof Secret)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be a !vault value (infra vault encrypt-string --name NAME), not clear text' });
}) as unknown as z.ZodType<Secret, z.ZodTypeDef, unknown>;

/** An application user: `@dangerous` (FLUSHALL, CONFIG, KEYS, DEBUG, ...) is never granted. */
export const appUser = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
    password: vaultValue,
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
