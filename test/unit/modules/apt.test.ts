import { describe, expect, it } from 'vitest';
import { apt } from '../../../src/modules/index.js';
import { parseAptPolicy, parseDpkgQuery, splitPin } from '../../../src/modules/apt-parse.js';
import { decidePackages, parseListsAge, renderSources, staleReason, type PackagesParams } from '../../../src/modules/apt.js';
import { fakeHost, withChanges, type FakeHost } from './fake-host.js';

/** The engine's per-host read cache (HostContext.cached), without the forgetting after apply. */
function withCache(host: FakeHost): FakeHost {
  const reads = new Map<string, Promise<unknown>>();
  return {
    ...host,
    cached<T>(key: string, read: () => Promise<T>) {
      if (!reads.has(key)) reads.set(key, read());
      return reads.get(key) as Promise<T>;
    },
  };
}

const POLICY = `nginx:
  Installed: 1.22.1-9
  Candidate: 1.22.1-9+deb12u1
  Version table:
     1.22.1-9+deb12u1 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
 *** 1.22.1-9 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
tree:
  Installed: (none)
  Candidate: 2.1.0-1
  Version table:
     2.1.0-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
ghost:
  Installed: (none)
  Candidate: (none)
  Version table:
`;
const DPKG = 'nginx\t1.22.1-9\tii \nold-thing\t1.0\trc \n';

describe('apt parsers', () => {
  it('dpkg-query: only "ii" counts as installed', () => {
    expect([...parseDpkgQuery(DPKG)]).toEqual([['nginx', '1.22.1-9']]);
  });
  it('apt-cache policy: candidates, (none) → null', () => {
    expect(Object.fromEntries(parseAptPolicy(POLICY))).toEqual({ nginx: '1.22.1-9+deb12u1', tree: '2.1.0-1', ghost: null });
  });
  it.each([
    ['nginx', { name: 'nginx' }],
    ['nginx=1.22.1-9', { name: 'nginx', version: '1.22.1-9' }],
  ])('splitPin %s', (spec, want) => expect(splitPin(spec)).toEqual(want));
  it.each([
    ['3 1500\n1000\n900', 500],
    ['3 1500\n900\n1000', 500],
    ['3 1500\n1000', 500],
    ['0 1500\n1000', null],
    ['3 1500', null],
  ])('lists age %j', (out, age) => expect(parseListsAge(out).ageSeconds).toBe(age));
  it.each([
    [{ ageSeconds: null }, 3600, 'package lists are missing'],
    [{ ageSeconds: 7200 }, 3600, 'package lists are 7200s old (> 3600s)'],
    [{ ageSeconds: 10 }, 3600, undefined],
  ])('stale %j', (age, valid, want) => expect(staleReason(age, valid)).toBe(want));
});

describe('decidePackages', () => {
  const installed = parseDpkgQuery(DPKG);
  const candidates = parseAptPolicy(POLICY);
  const p = (v: Partial<PackagesParams>) => apt.packages.module.params.parse({ names: ['nginx'], ...v });
  it.each([
    ['present, installed → nothing', p({}), [], undefined],
    ['latest, older installed → upgrade', p({ state: 'latest' }), [{ what: 'upgrade nginx', from: '1.22.1-9', to: '1.22.1-9+deb12u1' }], undefined],
    ['present, missing → install candidate', p({ names: ['tree'] }), [{ what: 'install tree', from: undefined, to: '2.1.0-1' }], undefined],
    ['pinned to another version', p({ names: ['nginx=1.22.1-9+deb12u1'] }), [{ what: 'upgrade nginx', from: '1.22.1-9', to: '1.22.1-9+deb12u1' }], undefined],
    ['absent, installed → remove', p({ state: 'absent' }), [{ what: 'remove nginx', from: '1.22.1-9' }], undefined],
    ['absent, not installed → nothing', p({ names: ['tree'], state: 'absent' }), [], undefined],
    [
      'stale lists: update first',
      p({ names: ['tree'] }),
      [{ what: 'apt-get update', from: 'lists old' }, { what: 'install tree', from: undefined, to: '2.1.0-1' }],
      'lists old',
    ],
  ])('%s', (_n, params, changes, stale) => {
    expect(decidePackages(params, installed, candidates, stale).changes).toEqual(changes);
  });

  it('diff names each package old → new', () => {
    const c = decidePackages(p({ names: ['nginx', 'tree'], state: 'latest' }), installed, candidates, undefined);
    expect(c.diff).toEqual([
      { kind: 'package', name: 'nginx', before: '1.22.1-9', after: '1.22.1-9+deb12u1' },
      { kind: 'package', name: 'tree', before: null, after: '2.1.0-1' },
    ]);
  });

  it('no candidate with fresh lists is an error; with missing lists it waits for the update', () => {
    expect(() => decidePackages(p({ names: ['ghost'] }), installed, candidates, undefined)).toThrow(/no installation candidate/);
    const c = decidePackages(p({ names: ['ghost'] }), installed, new Map(), 'package lists are missing');
    expect(c.changes.map((x) => x.what)).toEqual(['apt-get update', 'install ghost']);
  });

  it('check reads the host, then the candidates of what is missing; apply updates then installs non-interactively', async () => {
    const out = `@@infra-apt@@age\n0 1000\n1000\n@@infra-apt@@dpkg\n`;
    const host = fakeHost([{ stdout: out }, { stdout: POLICY }, { stdout: '' }]);
    const params = p({ names: ['tree'] });
    const c = await apt.packages.module.check(host, params);
    expect(host.commands).toHaveLength(2);
    expect(host.commands[1]).toBe('apt-cache policy tree 2>/dev/null; exit 0');
    await apt.packages.module.apply(host, params, withChanges(c));
    expect(host.commands[2]).toMatch(/apt-get .*update && .*DEBIAN_FRONTEND=noninteractive apt-get .*--no-install-recommends .*--force-confold install tree$/);
  });

  it('apply failure carries exit code and stderr tail', async () => {
    const host = fakeHost([{ stdout: '@@infra-apt@@age\n3 1\n1\n@@infra-apt@@dpkg\n' }, { stdout: POLICY }, { code: 100, stderr: 'E: Unable to fetch\n' }]);
    const params = p({ names: ['tree'] });
    const c = await apt.packages.module.check(host, params);
    await expect(apt.packages.module.apply(host, params, withChanges(c))).rejects.toThrow(/exit 100\):\nE: Unable to fetch/);
  });

  it("a host's package checks share one read: no apt-cache in a no-op run, candidates only for what is missing or latest", async () => {
    const snapshot = `@@infra-apt@@age\n3 1100\n1000\n@@infra-apt@@dpkg\n${DPKG}tree\t2.1.0-1\tii \n`;
    const host = withCache(fakeHost([{ stdout: snapshot }, { stdout: POLICY }]));
    const ok1 = await apt.packages.module.check(host, p({ names: ['nginx', 'tree'] }));
    const ok2 = await apt.packages.module.check(host, p({ names: ['nginx=1.22.1-9'] }));
    const gone = await apt.packages.module.check(host, p({ names: ['old-thing'], state: 'absent' }));
    expect([ok1.changes, ok2.changes, gone.changes]).toEqual([[], [], []]);
    expect(host.commands).toHaveLength(1);
    expect(host.commands[0]).toMatch(/dpkg-query -W -f='\$\{Package\}\\t\$\{Version\}\\t\$\{db:Status-Abbrev\}\\n' 2>\/dev\/null/);
    const up = await apt.packages.module.check(host, p({ names: ['nginx', 'tree'], state: 'latest' }));
    expect(host.commands.slice(1)).toEqual(['apt-cache policy nginx tree 2>/dev/null; exit 0']);
    expect(up.changes.map((x) => x.what)).toEqual(['upgrade nginx']);
  });

  it.each([['nginx; rm -rf /'], ['Nginx'], ['']])('rejects package name %j', (n) => {
    expect(apt.packages.module.params.safeParse({ names: [n] }).success).toBe(false);
  });
});

describe('apt.update and apt.repository', () => {
  it.each([
    ['3 1100\n1000', 3600, 0],
    ['3 9000\n1000', 3600, 1],
    ['0 1100\n1000', 3600, 1],
    ['3 1100\n1000', 0, 1],
  ])('update %s valid %d → %d change(s)', async (out, valid, n) => {
    const c = await apt.update.module.check(fakeHost([{ stdout: `@@infra-apt@@age\n${out}\n@@infra-apt@@dpkg\n` }]), apt.update.module.params.parse({ cacheValidTime: valid }));
    expect(c.changes).toHaveLength(n);
  });

  it('renders deb822 with Signed-By', () => {
    const p = apt.repository.module.params.parse({
      name: 'pgdg',
      uris: 'https://apt.postgresql.org/pub/repos/apt',
      suites: 'bookworm-pgdg',
      key: '-----BEGIN PGP PUBLIC KEY BLOCK-----\nxyz\n-----END PGP PUBLIC KEY BLOCK-----',
    });
    expect(renderSources(p)).toBe(
      '# managed by infra\nTypes: deb\nURIs: https://apt.postgresql.org/pub/repos/apt\nSuites: bookworm-pgdg\nComponents: main\nSigned-By: /etc/apt/keyrings/pgdg.asc\n',
    );
  });

  it('rejects a key that is not armored', () => {
    expect(apt.repository.module.params.safeParse({ name: 'x', uris: 'https://x', suites: 's', key: 'binary' }).success).toBe(false);
  });
});
