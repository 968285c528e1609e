/**
 * wireguard.key (a key made on the host, only its public half read back) and aide.update (the
 * re-baseline handler every role notifies), against a scripted host.
 */
import { describe, expect, it } from 'vitest';
import { aide, wireguard, moduleRegistry } from '../../../src/modules/index.js';
import { decideKey, parseKeyState } from '../../../src/modules/wireguard.js';
import { hasChanges, type Check, type Changes } from '../../../src/modules/types.js';

/** The check apply() receives (a test that gets no change fails here). */
const changes = (c: Check): Changes => {
  if (!hasChanges(c)) throw new Error(`no change: ${c.reason}`);
  return c;
};
import { fakeHost } from './fake-host.js';

const P = { privateKey: '/etc/wireguard/wg0.key', publicKey: '/etc/wireguard/wg0.pub' };
const PUB = 'tJ2Wu0xQ5yfma9F0gmgmWqnQMWLmc3b6t9SeBd1whiQ=';
const probe = (stat: string, derived: string, published: string) =>
  `@@infra-wg@@stat\n${stat}\n@@infra-wg@@derived\n${derived}\n@@infra-wg@@published\n${published}\n`;

describe('wireguard.key', () => {
  it('is registered', () => expect(moduleRegistry.get('wireguard.key')).toBe(wireguard.key.module));

  it.each([
    ['no key yet: generate it and publish its public half', probe('', '', ''), ['generate a private key on the host (it never leaves it)', 'write the public key']],
    ['key in place, public file missing', probe('600 root', PUB, ''), ['write the public key']],
    ['key in place, public file stale', probe('600 root', PUB, 'other='), ['write the public key']],
    ['key readable by others', probe('644 root', PUB, PUB), ['private key mode/owner']],
  ])('%s', (_what, stdout, want) => {
    expect(decideKey(P, parseKeyState(stdout)).changes.map((c) => c.what)).toEqual(want);
  });

  it('unchanged: the reason is the public key (every run prints it)', () => {
    expect(decideKey(P, parseKeyState(probe('600 root', PUB, PUB)))).toEqual({ changes: [], reason: `public key ${PUB}` });
  });

  it('check only ever reads the public half; apply makes the key in a subshell with umask 077', async () => {
    const host = fakeHost([{ stdout: probe('', '', '') }, {}]);
    const c = await wireguard.key.module.check(host, P);
    expect(host.commands[0]).toContain('wg pubkey < /etc/wireguard/wg0.key');
    expect(host.commands[0]).not.toMatch(/cat -- \/etc\/wireguard\/wg0\.key/);
    await wireguard.key.module.apply(host, P, changes(c));
    expect(host.commands[1]).toMatch(/^\(umask 077 && \{ \[ -s \/etc\/wireguard\/wg0\.key \] \|\| \{ wg genkey > /);
    expect(host.commands[1]).toMatch(/\)$/);
  });
});

describe('aide.update', () => {
  it('skipped with the reason where hardening has not set AIDE up', async () => {
    const host = fakeHost([{ stdout: 'LoadState=not-found\n' }]);
    const c = await aide.update.module.check(host, {});
    expect(c).toMatchObject({ changes: [], skipped: true });
    expect(c.reason).toMatch(/no infra-aide-update\.service: the hardening role installs it/);
  });

  it('a handler: it acts whenever notified, by restarting the re-baseline unit (a running one is replaced)', async () => {
    const host = fakeHost([{ stdout: 'LoadState=loaded\n' }, {}]);
    const c = await aide.update.module.check(host, {});
    expect(c).toMatchObject({ always: true, changes: [{ what: 're-baseline the AIDE database' }] });
    await aide.update.module.apply(host, {}, changes(c));
    expect(host.commands[1]).toBe('systemctl restart -- infra-aide-update.service');
  });

  it('a failed re-baseline fails the handler with the unit\'s journal', async () => {
    const host = fakeHost([{ stdout: 'LoadState=loaded\n' }, { code: 1, stderr: 'Job failed' }, { stdout: 'AIDE: cannot open database' }]);
    const c = await aide.update.module.check(host, {});
    await expect(aide.update.module.apply(host, {}, changes(c))).rejects.toThrow(/--- journal infra-aide-update.service ---\nAIDE: cannot open database/);
  });
});
