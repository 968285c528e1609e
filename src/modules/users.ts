/**
 * users.*: accounts, groups and authorized SSH keys. Each check is one round trip
 * (getent + id, or getent + the key file's probe).
 */
import { z } from 'zod';
import { raw, sh } from '../shell/quote.js';
import { isAccountName } from '../shell/account.js';
import { PINNED_DIR_FUNCTIONS } from '../shell/pinned-dir.js';
import { parseProbe, probeCommandFor, type FileState } from './file-state.js';
import { applyFile, joinLines, planFile, splitLines, type DesiredFile, type FilePlan } from './file-plan.js';
import { readChecked, runChecked, splitSections } from './run-checked.js';
import { defineModule, nonEmpty, unchanged, type Change, type Check } from './types.js';

const accountName = z.string().refine(isAccountName, 'a user/group name: lowercase letters, digits, _ and - (at most 32 characters)');
const MARK = '@@infra-users@@';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  comment: string;
  home: string;
  shell: string;
}

export function parsePasswd(line: string): PasswdEntry | null {
  const f = line.trim().split(':');
  if (f.length < 7) return null;
  return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), comment: f[4], home: f[5], shell: f[6] };
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parseGroup(line: string): GroupEntry | null {
  const f = line.trim().split(':');
  if (f.length < 4) return null;
  return { name: f[0], gid: Number(f[2]), members: f[3] ? f[3].split(',') : [] };
}

// ---------------------------------------------------------------- users.user

const userParams = z
  .object({
    name: accountName,
    uid: z.number().int().nonnegative().optional(),
    /** Primary group (must exist); default: a group named like the user. */
    group: accountName.optional(),
    /** Supplementary groups. */
    groups: z.array(accountName).optional(),
    /** true: add to `groups`, keep others. false: exactly `groups`. */
    append: z.boolean().default(true),
    shell: z.string().startsWith('/').optional(),
    home: z.string().startsWith('/').optional(),
    comment: z.string().refine((c) => !/[:\n]/.test(c), 'no ":" or newline').optional(),
    system: z.boolean().default(false),
    createHome: z.boolean().default(true),
    state: z.enum(['present', 'absent']).default('present'),
    /** With absent: also remove the home directory and mail spool. */
    remove: z.boolean().default(false),
  })
  .strict();
export type UserParams = z.infer<typeof userParams>;

export interface UserStatus {
  entry: PasswdEntry | null;
  primaryGroup?: string;
  /** Supplementary groups (primary excluded). */
  groups: string[];
}

export function parseUserStatus(stdout: string): UserStatus {
  const s = splitSections(stdout, MARK);
  const entry = parsePasswd(s.get('passwd') ?? '');
  if (!entry) return { entry: null, groups: [] };
  // `id -Gn` lists the primary group first.
  const [primaryGroup, ...rest] = (s.get('groups') ?? '').trim().split(/\s+/).filter(Boolean);
  const groups = rest.filter((g) => g !== primaryGroup);
  return { entry, primaryGroup, groups };
}

interface UserData {
  action: 'create' | 'modify' | 'delete';
  args: string[];
}

/** The decision, pure: useradd / usermod / userdel arguments. */
export function decideUser(p: UserParams, s: UserStatus): Check<UserData> {
  const e = s.entry;
  if (p.state === 'absent') {
    if (!e) return unchanged(`user ${p.name} does not exist`);
    return { changes: [{ what: `remove user ${p.name}`, from: `uid ${e.uid}` }], data: { action: 'delete', args: p.remove ? ['-r'] : [] } };
  }
  if (!e) {
    const args: string[] = [];
    if (p.uid !== undefined) args.push('-u', String(p.uid));
    if (p.group) args.push('-g', p.group);
    else args.push('-U');
    if (p.groups?.length) args.push('-G', p.groups.join(','));
    if (p.shell) args.push('-s', p.shell);
    if (p.home) args.push('-d', p.home);
    if (p.comment !== undefined) args.push('-c', p.comment);
    if (p.system) args.push('-r');
    args.push(p.createHome ? '-m' : '-M');
    return { changes: [{ what: `create user ${p.name}`, to: p.uid !== undefined ? `uid ${p.uid}` : undefined }], data: { action: 'create', args } };
  }
  const changes: Change[] = [];
  const args: string[] = [];
  if (p.uid !== undefined && p.uid !== e.uid) {
    changes.push({ what: 'uid', from: String(e.uid), to: String(p.uid) });
    args.push('-u', String(p.uid));
  }
  if (p.group && p.group !== s.primaryGroup) {
    changes.push({ what: 'primary group', from: s.primaryGroup, to: p.group });
    args.push('-g', p.group);
  }
  if (p.groups) {
    const missing = p.groups.filter((g) => !s.groups.includes(g));
    const extra = p.append ? [] : s.groups.filter((g) => !p.groups!.includes(g));
    if (missing.length || extra.length) {
      changes.push({ what: 'groups', from: s.groups.join(',') || '(none)', to: (p.append ? [...s.groups, ...missing] : p.groups).join(',') || '(none)' });
      if (p.append) args.push('-a', '-G', missing.join(','));
      else args.push('-G', p.groups.join(','));
    }
  }
  if (p.shell && p.shell !== e.shell) {
    changes.push({ what: 'shell', from: e.shell, to: p.shell });
    args.push('-s', p.shell);
  }
  if (p.home && p.home !== e.home) {
    changes.push({ what: 'home', from: e.home, to: p.home });
    args.push('-d', p.home, ...(p.createHome ? ['-m'] : []));
  }
  if (p.comment !== undefined && p.comment !== e.comment) {
    changes.push({ what: 'comment', from: e.comment, to: p.comment });
    args.push('-c', p.comment);
  }
  if (!nonEmpty(changes)) return unchanged(`user ${p.name} exists (uid ${e.uid})`);
  return { changes, data: { action: 'modify', args } };
}

export const user = defineModule<UserParams, z.input<typeof userParams>, UserData>({
  name: 'users.user',
  batchReads: () => true,
  params: userParams,
  describe: (p) => p.name,
  async check(host, p) {
    const script = [
      `echo ${MARK}passwd`,
      sh`getent passwd -- ${p.name}`,
      `echo ${MARK}groups`,
      sh`id -Gn -- ${p.name} 2>/dev/null`,
      'exit 0',
    ].join('\n');
    const r = await readChecked(host, script, `read user ${p.name}`);
    return decideUser(p, parseUserStatus(r.stdout));
  },
  async apply(host, p, c) {
    const d = c.data;
    const cmd = { create: 'useradd', modify: 'usermod', delete: 'userdel' }[d.action];
    await runChecked(host, sh`${raw(cmd)} ${d.args} -- ${p.name}`, `${cmd} ${p.name}`);
  },
});

// ---------------------------------------------------------------- users.group

const groupParams = z
  .object({
    name: accountName,
    gid: z.number().int().nonnegative().optional(),
    system: z.boolean().default(false),
    state: z.enum(['present', 'absent']).default('present'),
  })
  .strict();
export type GroupParams = z.infer<typeof groupParams>;

export function decideGroup(p: GroupParams, g: GroupEntry | null): Check<string[]> {
  if (p.state === 'absent') {
    if (!g) return unchanged(`group ${p.name} does not exist`);
    return { changes: [{ what: `remove group ${p.name}`, from: `gid ${g.gid}` }], data: ['groupdel'] };
  }
  if (!g) {
    const args = ['groupadd', ...(p.gid !== undefined ? ['-g', String(p.gid)] : []), ...(p.system ? ['-r'] : [])];
    return { changes: [{ what: `create group ${p.name}`, to: p.gid !== undefined ? `gid ${p.gid}` : undefined }], data: args };
  }
  if (p.gid !== undefined && p.gid !== g.gid) {
    return { changes: [{ what: 'gid', from: String(g.gid), to: String(p.gid) }], data: ['groupmod', '-g', String(p.gid)] };
  }
  return unchanged(`group ${p.name} exists (gid ${g.gid})`);
}

export const group = defineModule<GroupParams, z.input<typeof groupParams>, string[]>({
  name: 'users.group',
  batchReads: () => true,
  params: groupParams,
  describe: (p) => p.name,
  async check(host, p) {
    const r = await host.run(sh`getent group -- ${p.name}`);
    if (r.code !== 0 && r.code !== 2) throw new Error(`getent group ${p.name} failed (exit ${r.code}): ${r.stderr.trim()}`);
    return decideGroup(p, parseGroup(r.stdout));
  },
  async apply(host, p, c) {
    const [cmd, ...args] = c.data;
    await runChecked(host, sh`${raw(cmd)} ${args} -- ${p.name}`, `${cmd} ${p.name}`);
  },
});

// ---------------------------------------------------------------- users.authorizedKey

const keyLine = /^(?:(\S.*)\s)?(ssh-(?:rsa|ed25519|dss)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)\s+([A-Za-z0-9+/=]+)(?:\s.*)?$/;

/** The key's identity (type + base64 blob), ignoring options and comment; null if not a key line. */
export function keyIdentity(line: string): string | null {
  const m = keyLine.exec(line.trim());
  return m ? `${m[2]} ${m[3]}` : null;
}

const authorizedKeyParams = z
  .object({
    user: accountName,
    /** One or more public key lines (options and comments allowed). */
    key: z
      .string()
      .transform((k) => k.split('\n').map((l) => l.trim()).filter(Boolean))
      .refine((ls) => ls.length > 0 && ls.every((l) => keyIdentity(l) !== null), 'not an SSH public key line'),
    state: z.enum(['present', 'absent']).default('present'),
    /** Remove every other key from the file. */
    exclusive: z.boolean().default(false),
  })
  .strict();
export type AuthorizedKeyParams = z.infer<typeof authorizedKeyParams>;

/** The new file lines, pure. */
export function editAuthorizedKeys(lines: string[], p: AuthorizedKeyParams): string[] {
  const wanted = new Map(p.key.map((k) => [keyIdentity(k) as string, k]));
  if (p.state === 'absent') return lines.filter((l) => !wanted.has(keyIdentity(l) ?? ''));
  if (p.exclusive) return [...p.key];
  const out: string[] = [];
  const seen = new Set<string>();
  for (const l of lines) {
    const id = keyIdentity(l);
    if (id !== null && wanted.has(id)) {
      if (!seen.has(id)) out.push(wanted.get(id) as string); // same key, new options/comment: replace in place
      seen.add(id);
    } else out.push(l);
  }
  for (const [id, k] of wanted) if (!seen.has(id)) out.push(k);
  return out;
}

/** The write, or (check mode only) the user an earlier task is expected to create. */
type KeyData = { want: DesiredFile; state: FileState; plan: FilePlan; home: string; uid: number; gid: number } | { missingUser: string };

/**
 * Reads ~/.ssh and authorized_keys without root following the user's links: both are probed
 * with lstat semantics, and the content is read AS THE USER (setpriv), so a link to a
 * root-only file shows nothing the user could not read anyway.
 */
function readKeysScript(user: string): string {
  return [
    `echo ${MARK}passwd`,
    sh`e=$(getent passwd -- ${user}) || { echo; exit 0; }`,
    'echo "$e"',
    `h=$(printf '%s' "$e" | cut -d: -f6); u=$(printf '%s' "$e" | cut -d: -f3); g=$(printf '%s' "$e" | cut -d: -f4)`,
    `echo ${MARK}ssh`,
    probeCommandFor(raw('"$h/.ssh"'), 'never'),
    `echo ${MARK}file`,
    probeCommandFor(raw('"$h/.ssh/authorized_keys"'), 'never'),
    `echo ${MARK}content`,
    `if [ -f "$h/.ssh/authorized_keys" ] && [ ! -L "$h/.ssh/authorized_keys" ]; then`,
    `  if [ "$(id -u)" = "$u" ]; then base64 -w0 -- "$h/.ssh/authorized_keys"; else setpriv --reuid="$u" --regid="$g" --clear-groups -- base64 -w0 -- "$h/.ssh/authorized_keys"; fi || exit 1`,
    'fi',
    'exit 0',
  ].join('\n');
}

/** Refuses what root must not write through: a link, or something the user does not own. */
export function checkKeyPaths(user: string, uid: number, sshDir: string, ssh: FileState, file: FileState): void {
  const hint = `root does not follow or take over what ${user} controls: make it a directory/file owned by ${user}`;
  if (ssh.kind === 'link') throw new Error(`refusing: ${sshDir} is a symlink (${hint})`);
  if (ssh.kind !== 'absent' && ssh.kind !== 'directory') throw new Error(`refusing: ${sshDir} is not a directory`);
  if (ssh.kind === 'directory' && ssh.uid !== uid) throw new Error(`refusing: ${sshDir} is owned by ${ssh.owner}, not ${user} (${hint})`);
  const path = `${sshDir}/authorized_keys`;
  if (file.kind === 'link') throw new Error(`refusing: ${path} is a symlink (${hint})`);
  if (file.kind !== 'absent' && file.kind !== 'file') throw new Error(`refusing: ${path} is not a regular file`);
  if (file.kind === 'file' && file.uid !== uid) throw new Error(`refusing: ${path} is owned by ${file.owner}, not ${user} (${hint})`);
}

/**
 * Creates ~/.ssh (0700, the user's) or checks it, on the pinned directory: walked into from
 * the home directory, never through a symlink the user placed, never taking over a directory
 * someone else owns.
 */
function sshDirScript(home: string, uid: number, gid: number): string {
  return [
    PINNED_DIR_FUNCTIONS,
    sh`infra_walk ${home}`,
    'hp=$PWD',
    '[ ! -L ./.ssh ] || infra_refuse "$hp/.ssh is a symlink"',
    'made=',
    '[ -e ./.ssh ] || { mkdir -m 0700 -- ./.ssh && made=1; } || exit 1',
    'cd -P -- ./.ssh || exit 1',
    '[ "$PWD" = "$hp/.ssh" ] || infra_refuse "$hp/.ssh is a symlink"',
    `[ -z "$made" ] || chown -- ${uid}:${gid} . || exit 1`,
    `[ "$(stat -c %u .)" = ${uid} ] || infra_refuse "$hp/.ssh is not owned by uid ${uid}"`,
    'chmod 0700 .',
  ].join('\n');
}

export const authorizedKey = defineModule<AuthorizedKeyParams, z.input<typeof authorizedKeyParams>, KeyData>({
  name: 'users.authorizedKey',
  params: authorizedKeyParams,
  describe: (p) => `${p.user}: ${p.key.map((k) => (keyIdentity(k) ?? '').slice(0, 30) + '…').join(', ')}`,
  async check(host, p) {
    const r = await readChecked(host, readKeysScript(p.user), `read ${p.user}'s authorized_keys`);
    const s = splitSections(r.stdout, MARK);
    const entry = parsePasswd(s.get('passwd') ?? '');
    if (!entry) {
      if (host.checkMode) return { changes: [{ what: `add key for ${p.user}`, from: 'user not created yet' }], data: { missingUser: p.user } };
      throw new Error(`user ${p.user} does not exist`);
    }
    const sshDir = `${entry.home}/.ssh`;
    const path = `${sshDir}/authorized_keys`;
    const file = parseProbe(s.get('file') ?? 'absent');
    checkKeyPaths(entry.name, entry.uid, sshDir, parseProbe(s.get('ssh') ?? 'absent'), file);
    const state: FileState = file.kind === 'file' ? { ...file, content: Buffer.from((s.get('content') ?? '').trim(), 'base64') } : file;
    const lines = editAuthorizedKeys(splitLines(state.content), p);
    if (state.kind === 'absent' && lines.length === 0) return unchanged(`${path} does not exist`);
    const want: DesiredFile = { path, content: joinLines(lines), mode: '0600', owner: String(entry.uid), group: String(entry.gid) };
    const plan = planFile(want, state);
    if (!nonEmpty(plan.changes)) return unchanged(`${path} is up to date`);
    const data: KeyData = { want, state, plan, home: entry.home, uid: entry.uid, gid: entry.gid };
    return { changes: plan.changes, diff: plan.diff ? [plan.diff] : undefined, data };
  },
  async apply(host, _p, c) {
    const d = c.data;
    if ('missingUser' in d) throw new Error(`user ${d.missingUser} does not exist`);
    await runChecked(host, sshDirScript(d.home, d.uid, d.gid), `create ${d.home}/.ssh`);
    await applyFile(host, d.want, d.state, d.plan);
  },
});
