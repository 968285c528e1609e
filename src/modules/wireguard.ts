/**
 * wireguard.key: a WireGuard private key generated ON the host, where it stays (0600, root):
 * the controller never reads it. Its public key is written next to it (0644) for operators
 * to fetch, and is the reason an unchanged task reports, so every run prints it.
 */
import { z } from 'zod';
import { sh } from '../shell/quote.js';
import { pathSchema } from './whole-file.js';
import { runChecked, splitSections } from './run-checked.js';
import { defineModule, nonEmpty, unchanged, type Change, type Check } from './types.js';

const keyParams = z
  .object({
    /** The private key (default /etc/wireguard/<interface>.key). */
    privateKey: pathSchema,
    /** The public key, derived from it (default /etc/wireguard/<interface>.pub). */
    publicKey: pathSchema,
  })
  .strict();
export type KeyParams = z.infer<typeof keyParams>;

const MARK = '@@infra-wg@@';

export interface KeyState {
  /** The private key exists, root-owned and 0600. */
  privateKey: 'absent' | 'ok' | 'loose';
  /** The public key derived from it, if it exists. */
  derived?: string;
  /** What the public key file holds. */
  published?: string;
}

/** Pure decision. */
export function decideKey(p: KeyParams, s: KeyState): Check {
  const changes: Change[] = [];
  if (s.privateKey === 'absent') changes.push({ what: 'generate a private key on the host (it never leaves it)', to: p.privateKey });
  if (s.privateKey === 'loose') changes.push({ what: 'private key mode/owner', to: '0600 root' });
  if (s.privateKey === 'absent' || s.derived !== s.published) changes.push({ what: 'write the public key', to: p.publicKey });
  return nonEmpty(changes) ? { changes } : unchanged(`public key ${s.derived}`);
}

export function parseKeyState(stdout: string): KeyState {
  const s = splitSections(stdout, MARK);
  const stat = (s.get('stat') ?? '').trim();
  if (!stat) return { privateKey: 'absent' };
  return {
    privateKey: stat === '600 root' ? 'ok' : 'loose',
    derived: (s.get('derived') ?? '').trim() || undefined,
    published: (s.get('published') ?? '').trim() || undefined,
  };
}

export const key = defineModule<KeyParams, z.input<typeof keyParams>>({
  name: 'wireguard.key',
  params: keyParams,
  describe: (p) => p.privateKey,
  async check(host, p) {
    // Only the public half ever leaves the host.
    const script = [
      `echo ${MARK}stat`,
      sh`[ -s ${p.privateKey} ] && stat -c '%a %U' -- ${p.privateKey}`,
      `echo ${MARK}derived`,
      sh`[ -s ${p.privateKey} ] && wg pubkey < ${p.privateKey}`,
      `echo ${MARK}published`,
      sh`cat -- ${p.publicKey} 2>/dev/null`,
      'exit 0',
    ].join('\n');
    const r = await runChecked(host, script, `read ${p.privateKey}`);
    return decideKey(p, parseKeyState(r.stdout));
  },
  async apply(host, p) {
    // A subshell: the umask must not outlive this command in the session's shell.
    await runChecked(
      host,
      '(' +
      [
        'umask 077',
        sh`{ [ -s ${p.privateKey} ] || { wg genkey > ${`${p.privateKey}.new`} && mv -f ${`${p.privateKey}.new`} ${p.privateKey}; }; }`,
        sh`chown root:root ${p.privateKey} && chmod 0600 ${p.privateKey}`,
        sh`wg pubkey < ${p.privateKey} > ${`${p.publicKey}.new`} && chmod 0644 ${`${p.publicKey}.new`} && mv -f ${`${p.publicKey}.new`} ${p.publicKey}`,
      ].join(' && ') +
      ')',
      `WireGuard key ${p.privateKey}`,
    );
  },
});
