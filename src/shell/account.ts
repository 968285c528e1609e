/**
 * Account names and ids that reach chown/chgrp/useradd: validated, not only quoted, because
 * quoting cannot stop a value like `--reference=/etc/shadow` from being read as an option.
 */

/** A user or group name as useradd accepts it (Debian's NAME_REGEX, with `_`), at most 32 characters. */
export const ACCOUNT_NAME = /^[a-z_][a-z0-9_-]*[$]?$/;
export const ACCOUNT_NAME_MAX = 32;

export const ACCOUNT_HINT = 'an account name (lowercase letters, digits, _ and -, at most 32 characters) or a numeric id';

export function isAccountName(v: string): boolean {
  return v.length <= ACCOUNT_NAME_MAX && ACCOUNT_NAME.test(v);
}

/** An owner/group as chown takes it: a name, or a numeric id (below 2^32 - 1, the "no id" value). */
export function isAccountId(v: string): boolean {
  return isAccountName(v) || (/^\d{1,10}$/.test(v) && Number(v) < 4294967295);
}
