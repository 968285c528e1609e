/**
 * restic.peerKey: an SSH public key that another inventory host holds, copied into a file here.
 * The backup repository host trusts each client's own key (made on the client, never leaving
 * it), and each client trusts the repository host's host key: both read through the peer's
 * own session (HostContext.peerRun), whose host key the controller has verified. check() reads
 * the peer and this host; apply() writes what check() read.
 */
import { z } from 'zod';
import { sh } from '../shell/quote.js';
import { attrsShape } from './file-plan.js';
import { applyWholeFile, checkWholeFile, pathSchema, type WriteData } from './whole-file.js';
import { defineModule, type Check, type HostContext } from './types.js';

const peerKeyParams = z
  .object({
    /** The inventory host holding the key. */
    peer: z.string().min(1),
    /** The public key file on the peer ("ssh-ed25519 AAAA... comment"). */
    src: pathSchema,
    dest: pathSchema,
    /** Written before the key type on the line: authorized_keys options, or a known_hosts host pattern. */
    prefix: z.string().regex(/^[^\n]*$/, 'one line').default(''),
    ...attrsShape,
  })
  .strict();
export type PeerKeyParams = z.infer<typeof peerKeyParams>;

/** "ssh-ed25519 AAAA…": the key type and its base64 blob; the comment is dropped (it may name anything). */
const KEY_LINE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) ([A-Za-z0-9+/]+={0,2})(?:\s.*)?$/;

export function parsePublicKey(text: string): string | undefined {
  const m = KEY_LINE.exec(text.trim().split('\n')[0] ?? '');
  return m ? `${m[1]} ${m[2]}` : undefined;
}

/** The file's content: one line, the prefix (if any) then the key. */
export const keyLine = (prefix: string, key: string): string => `${prefix ? `${prefix} ` : ''}${key}\n`;

async function readPeerKey(host: HostContext, p: PeerKeyParams): Promise<{ key?: string; answer: string }> {
  if (!host.peerRun) throw new Error('restic.peerKey reads another host: run it through infra apply');
  try {
    const r = await host.peerRun(p.peer, sh`cat -- ${p.src}`, { timeoutMs: 20_000 });
    if (r.code !== 0) return { answer: `${p.src} unreadable (exit ${r.code}): ${r.stderr.trim().slice(0, 200)}` };
    const key = parsePublicKey(r.stdout);
    return key ? { key, answer: 'ok' } : { answer: `${p.src} holds no SSH public key` };
  } catch (e) {
    return { answer: `unreachable: ${e instanceof Error ? e.message : String(e)}` };
  }
}

export const peerKey = defineModule<PeerKeyParams, z.input<typeof peerKeyParams>, WriteData | undefined>({
  name: 'restic.peerKey',
  params: peerKeyParams,
  describe: (p) => `${p.dest} ← ${p.peer}:${p.src}`,
  async check(host, p): Promise<Check<WriteData | undefined>> {
    const { key, answer } = await readPeerKey(host, p);
    if (!key) {
      // A plan before the peer was set up: the key will be there once its play ran.
      if (host.checkMode) return { changes: [{ what: `key from ${p.peer}`, from: answer }], data: undefined };
      throw new Error(`restic.peerKey: no key from ${p.peer}: ${answer} (apply the restic role to ${p.peer} first: site.yaml runs the clients before the repository host)`);
    }
    return checkWholeFile(host, { path: p.dest, content: Buffer.from(keyLine(p.prefix, key)), mode: p.mode, owner: p.owner, group: p.group });
  },
  async apply(host, _p, c) {
    if (!c.data) throw new Error('restic.peerKey: nothing read to write (check mode only)');
    await applyWholeFile(host, { ...c, data: c.data });
  },
});
