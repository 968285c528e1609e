/**
 * zod schemas of an inventory's files. Strict: an unknown key is an error (with a
 * did-you-mean hint, see zod-errors.ts), never silently ignored.
 */
import { z } from 'zod';
import { isSecret, type Secret } from '../secrets/secret.js';

/** Host and group names: usable in limit patterns (no ':', ',', '&', '!', '*', '?', '[').  */
export const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const name = z.string().regex(NAME_RE, 'names use letters, digits, "_", "." and "-" only');

const vaultOnly = z.custom<Secret>(isSecret, { message: 'must be a !vault value (secrets are never written in clear)' });

export const varsSchema = z.record(z.unknown());

/** Connection keys, allowed on a host and on a group (host > child group > parent > all). */
export const connectionShape = {
  connection: z.enum(['ssh', 'local']).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().min(1).optional(),
  /** Private key path, relative to the inventory directory. */
  key: z.string().min(1).optional(),
  keyPassphrase: vaultOnly.optional(),
  /** An inventory host name or "[user@]address[:port]"; null = direct. */
  bastion: z.string().min(1).nullable().optional(),
  become: z.union([z.literal('sudo'), z.literal(false)], { errorMap: () => ({ message: 'expected "sudo" or false' }) }).optional(),
  becomePassword: vaultOnly.optional(),
  /** Seconds between ssh keepalives; a host that misses keepaliveCount of them in a row is unreachable. */
  keepaliveInterval: z.number().positive().max(3600).optional(),
  keepaliveCount: z.number().int().min(1).max(100).optional(),
};
export type ConnectionKeys = { [K in keyof typeof connectionShape]?: z.infer<(typeof connectionShape)[K]> };
export const CONNECTION_KEYS = Object.keys(connectionShape) as (keyof typeof connectionShape)[];

export const hostSchema = z
  .object({
    address: z.string().min(1).optional(),
    groups: z.array(name).optional(),
    vars: varsSchema.optional(),
    ...connectionShape,
  })
  .strict();

export const groupSchema = z
  .object({
    children: z.array(name).optional(),
    hosts: z.array(name).optional(),
    vars: varsSchema.optional(),
    ...connectionShape,
  })
  .strict();

export const hostsFileSchema = z
  .object({
    hosts: z.record(name, hostSchema.nullable()),
    groups: z.record(name, groupSchema.nullable()).optional(),
  })
  .strict();

/** The file's outline only; load.ts validates each host and group with its own schema. */
export const hostsFileShapeSchema = z
  .object({
    hosts: z.record(name, z.unknown()),
    groups: z.record(name, z.unknown()).optional(),
  })
  .strict();

export type RawHost = z.infer<typeof hostSchema>;
export type RawGroup = z.infer<typeof groupSchema>;
export type HostsFile = z.infer<typeof hostsFileSchema>;
