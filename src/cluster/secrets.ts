/**
 * Secrets a role needs (replication passwords, ACL users, exporter credentials): ONE model.
 * The operator creates each one once, in the vault, and commits it with the inventory:
 *
 *   openssl rand -base64 32 | infra vault encrypt-string --name pg_replication_password --stdin
 *   → paste the printed `!vault ...` after `pg_replication_password:` in group_vars/postgres.yaml
 *
 * A role declares the variable with `vaultSecret(...)`. Before anything connects (apply, plan,
 * `infra check`), a missing value is an input error that prints that exact command, and a
 * value in clear text is refused (it would be committed readable). Nothing is generated at
 * run time: no run writes into the inventory, the value is stable across runs and machines,
 * every change to it is a reviewed commit, and rotating it is editing one line.
 */
import { z } from 'zod';
import { Secret, registerSecretValue } from '../secrets/secret.js';

export interface VaultSecretOptions {
  /** Where the operator should put it: "group_vars/postgres.yaml". */
  file: string;
  /** Random bytes the suggested command generates (default 32). */
  bytes?: number;
}

/** The exact commands that create the value, for an error message. */
export function createSecretHint(name: string, o: VaultSecretOptions): string {
  return `create it once: openssl rand -base64 ${o.bytes ?? 32} | tr -d '\\n' | infra vault encrypt-string --name ${name} --stdin  — and paste the printed line after "${name}:" in ${o.file}`;
}

/** A role variable that must be a vault value (a Secret); missing or in clear text → the command to run. */
export function vaultSecret(name: string, o: VaultSecretOptions): z.ZodType<Secret, z.ZodTypeDef, unknown> {
  return z.unknown().transform((v, ctx) => {
    if (v instanceof Secret) return v;
    // A password written in clear is still a password: mask it in the error that names it.
    if (typeof v === 'string') registerSecretValue(v);
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: v === undefined || v === null ? `not set; ${createSecretHint(name, o)}` : `must be a !vault value, not clear text (it would be committed readable); ${createSecretHint(name, o)}`,
    });
    return z.NEVER;
  });
}
