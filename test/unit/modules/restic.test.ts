/**
 * restic.peerKey decisions without a host: what the peer answered decides; a peer without its
 * key is a pending change in check mode (a plan before the client's play ran) and a failed
 * task with what to run otherwise; the key is written with the prefix, the comment dropped.
 */
import { describe, it, expect } from 'vitest';
import { peerKey } from '../../../src/modules/restic.js';
import { hasChanges } from '../../../src/modules/types.js';
import type { RunResult } from '../../../src/transport/types.js';
import { fakeHost } from './fake-host.js';

const module = peerKey.module;
const params = module.params.parse({ peer: 'api1', src: '/etc/restic/id_ed25519.pub', dest: '/etc/ssh/restic-keys/restic-api1', prefix: 'restrict', owner: 'root', group: 'root', mode: '0644' });
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey';

function withPeer(answer: Partial<RunResult> | Error, opts: { checkMode?: boolean; local?: { stdout: string }[] } = {}) {
  const host = fakeHost(opts.local ?? [], { checkMode: opts.checkMode });
  const asked: string[] = [];
  host.peerRun = async (name, cmd) => {
    asked.push(`${name}: ${cmd}`);
    if (answer instanceof Error) throw answer;
    return { code: 0, stdout: '', stderr: '', stdoutBytes: Buffer.from(answer.stdout ?? ''), ...answer };
  };
  return { host, asked };
}

describe('restic.peerKey', () => {
  it('reads the peer through its own session, quoted', async () => {
    const { host, asked } = withPeer({ code: 1, stderr: 'No such file' }, { checkMode: true });
    await module.check(host, params);
    expect(asked).toEqual(['api1: cat -- /etc/restic/id_ed25519.pub']);
  });

  it('no key on the peer yet: a pending change in check mode, a failure naming what to run otherwise', async () => {
    const plan = await module.check(withPeer({ code: 1, stderr: 'cat: No such file or directory' }, { checkMode: true }).host, params);
    expect(hasChanges(plan)).toBe(true);
    expect(plan.changes[0]?.from).toMatch(/unreadable \(exit 1\)/);
    await expect(module.check(withPeer({ code: 1 }).host, params)).rejects.toThrow(/apply the restic role to api1 first/);
    await expect(module.check(withPeer(new Error('connect ECONNREFUSED')).host, params)).rejects.toThrow(/unreachable: connect ECONNREFUSED/);
    await expect(module.check(withPeer({ stdout: 'garbage\n' }).host, params)).rejects.toThrow(/holds no SSH public key/);
  });

  it('a key: the file is "<prefix> <type> <blob>", compared with what this host has', async () => {
    const { host } = withPeer({ stdout: `${KEY} restic@api1\n` }, { local: [{ stdout: 'absent\n' }] });
    const c = await module.check(host, params);
    expect(hasChanges(c)).toBe(true);
    expect(host.commands).toHaveLength(1);
    if (!hasChanges(c)) return;
    await module.apply(host, params, c);
    expect(host.puts.map((p) => [p.path, p.bytes])).toEqual([['/etc/ssh/restic-keys/restic-api1', `restrict ${KEY}\n`]]);
  });
});
