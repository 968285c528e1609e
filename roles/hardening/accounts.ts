/**
 * Accounts: login.defs (password ages, hashing rounds, umask and home directory mode of new
 * accounts), password quality (pam_pwquality), per-user temporary directories (pam_tmpdir),
 * idle shell timeout, and home directories no one else can read.
 */
import { command, files, sh, type Task } from 'infra';
import type { HardeningVars } from './role.js';

/** cracklib-runtime builds the dictionary pam_pwquality checks (without it every password fails). */
export const ACCOUNT_PACKAGES = ['libpam-pwquality', 'cracklib-runtime', 'libpam-tmpdir'];

/** login.defs keys and values; they apply to accounts created from now on (useradd). */
export function loginDefs(v: HardeningVars): [string, string | number][] {
  const umask = v.login_umask;
  // The home directory mode that umask gives: 027 → 0750.
  const homeMode = `0${(0o777 & ~parseInt(umask, 8)).toString(8)}`;
  return [
    ['UMASK', umask],
    ['HOME_MODE', homeMode],
    ['PASS_MAX_DAYS', v.password_max_days],
    ['PASS_MIN_DAYS', v.password_min_days],
    ['PASS_WARN_AGE', v.password_warn_days],
    ['SHA_CRYPT_MIN_ROUNDS', v.password_hash_rounds],
    ['SHA_CRYPT_MAX_ROUNDS', v.password_hash_rounds],
  ];
}

/** Human accounts' homes (UID 1000–59999 under /home) with group write or any access for others. */
const HUMAN_HOMES = `awk -F: '$3 >= 1000 && $3 < 60000 && $6 ~ /^\\/home\\// { print $6 }' /etc/passwd`;
const LOOSE_HOMES = `${HUMAN_HOMES} | while IFS= read -r d; do find "$d" -maxdepth 0 -type d -perm /027 2>/dev/null; done`;

export function accountsTasks(v: HardeningVars): Task[] {
  return [
    // A setting line ("KEY value" or the commented "#KEY value" Debian ships) is replaced in place.
    ...loginDefs(v).map(([key, value]) =>
      files.line({ path: '/etc/login.defs', regexp: `^#?${key}\\s`, line: `${key}\t${value}` }),
    ),
    files.directory({ path: '/etc/security/pwquality.conf.d', mode: '0755', owner: 'root', group: 'root' }),
    files.template({ src: 'pwquality.conf.hbs', dest: '/etc/security/pwquality.conf.d/90-infra.conf', mode: '0644', owner: 'root', group: 'root' }),
    files.template({ src: 'profile.sh.hbs', dest: '/etc/profile.d/infra-hardening.sh', mode: '0644', owner: 'root', group: 'root' }),
    command.run({
      name: 'home directories: no access for others, no group write',
      cmd: `${HUMAN_HOMES} | while IFS= read -r d; do [ -d "$d" ] && chmod g-w,o-rwx -- "$d"; done; true`,
      onlyIf: `${LOOSE_HOMES} | grep -q .`,
    }),
    // Key-only admins have no password to age: an expired one would still refuse their SSH
    // key (PAM's account check), a lockout a year after the account was made.
    ...v.admin_users
      .filter((u) => u.nopasswd)
      .map((u) =>
        command.run({
          name: `${u.name}: no password expiry (key-only account)`,
          cmd: sh`chage -M -1 ${u.name}`,
          onlyIf: sh`getent shadow ${u.name} | cut -d: -f5 | grep -q .`,
        }),
      ),
  ];
}
