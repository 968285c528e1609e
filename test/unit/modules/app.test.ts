/**
 * app.release without a host: the artifact (deterministic ustar, read back by GNU tar), the
 * health answer, the release decision, and the apply order against a scripted host.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { packDirectory } from '../../../src/modules/tar.js';
import { decideRelease, loadArtifact, parseHealth, parseState, release, stateScript, type ReleaseParams, type ReleaseState } from '../../../src/modules/app.js';
import { UserError } from '../../../src/errors.js';
import { fakeHost } from './fake-host.js';
import { hasChanges, type Check } from '../../../src/modules/types.js';

/** The check, known to have changes (what apply() takes). */
function changes<D>(c: Check<D>) {
  if (!hasChanges(c)) throw new Error(`expected changes, got: ${c.reason}`);
  return c;
}

function appDir(version = '1.0.0'): string {
  const dir = mkdtempSync(join(tmpdir(), 'infra-app-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'x', version }));
  writeFileSync(join(dir, 'server.js'), 'console.log(1)\n');
  mkdirSync(join(dir, 'lib/deep/'.repeat(12)), { recursive: true });
  writeFileSync(join(dir, 'lib/deep/'.repeat(12), 'a-file-with-a-long-name.js'), 'x');
  writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\n');
  chmodSync(join(dir, 'run.sh'), 0o755);
  symlinkSync('server.js', join(dir, 'index.js'));
  mkdirSync(join(dir, 'node_modules/left'), { recursive: true });
  writeFileSync(join(dir, 'node_modules/left/index.js'), 'no');
  return dir;
}

const P = (over: Partial<ReleaseParams> = {}): ReleaseParams =>
  release.module.params.parse({
    root: '/srv/api', artifact: '/tmp/app', user: 'api', install: 'npm ci --omit=dev', activate: 'systemctl reload-or-restart pm2-api',
    health: { url: 'http://127.0.0.1/health', versionField: 'version' }, keep: 3, ...over,
  });

const healthy = (v: string) => ({ ok: true, summary: `HTTP 200, version "${v}"` });
const state = (over: Partial<ReleaseState> = {}): ReleaseState => ({ current: 'releases/1.0.0', marker: 'aaa', releases: ['1.0.0'], health: healthy('1.0.0'), ...over });
const A = (version: string, sha = 'aaa') => ({ version, sha256: sha, bytes: Buffer.alloc(2048) });

describe('packDirectory', () => {
  it('is byte-identical for the same tree, leaves node_modules out, and GNU tar reads it back', async () => {
    const dir = appDir();
    const a = await packDirectory(dir);
    expect(Buffer.compare(a, await packDirectory(dir))).toBe(0);
    const listing = execFileSync('tar', ['-tvf', '-'], { input: a }).toString();
    expect(listing).toMatch(/^-rwxr-xr-x root\/root +\d+ 1970-01-01 00:00 run\.sh$/m);
    expect(listing).toMatch(/^lrwxrwxrwx root\/root +0 1970-01-01 00:00 index\.js -> server\.js$/m);
    expect(listing).toContain(`${'lib/deep/'.repeat(12)}a-file-with-a-long-name.js`); // > 100 bytes: prefix field
    expect(listing).not.toContain('node_modules');
    const out = mkdtempSync(join(tmpdir(), 'infra-untar-'));
    execFileSync('tar', ['-xf', '-', '-C', out], { input: a });
    expect(execFileSync('cat', [join(out, 'server.js')]).toString()).toBe('console.log(1)\n');
  });

  it('loadArtifact: version from package.json, gzip of the archive, sha256 of the archive', async () => {
    const dir = appDir('2.1.0');
    const a = await loadArtifact({ artifact: dir });
    expect(a.version).toBe('2.1.0');
    expect(gunzipSync(a.bytes).equals(await packDirectory(dir))).toBe(true);
    expect((await loadArtifact({ artifact: dir, version: 'hotfix-1' })).version).toBe('hotfix-1');
  });

  it('loadArtifact: a missing artifact or a bad version is an input error', async () => {
    await expect(loadArtifact({ artifact: '/nonexistent/app' })).rejects.toBeInstanceOf(UserError);
    await expect(loadArtifact({ artifact: appDir('../../etc') })).rejects.toThrow(/not a release name/);
  });
});

describe('parseHealth', () => {
  const out = (body: string, code: string, err = '') => `${body}\n@@http_code=${code}\n${err}`;
  it.each([
    ['the wanted version', out('{"status":"ok","version":"2.0.0"}', '200'), true, 'HTTP 200, version "2.0.0"'],
    ['another version', out('{"version":"1.0.0"}', '200'), false, 'HTTP 200, version "1.0.0"'],
    ['an error status', out('{"status":"broken"}', '503'), false, 'HTTP 503'],
    ['not JSON', out('<html>', '200'), false, 'HTTP 200, not JSON'],
    ['no answer', `curl: (7) Failed to connect to 127.0.0.1 port 80: Connection refused\n\n@@http_code=000\n`, false, 'Failed to connect to 127.0.0.1 port 80: Connection refused'],
  ])('%s', (_what, text, ok, summary) => {
    expect(parseHealth(text, '2.0.0', 'version')).toEqual({ ok, summary });
  });
});

describe('decideRelease', () => {
  it('current and answering its version: unchanged', () => {
    const c = decideRelease(P(), A('1.0.0'), state());
    expect(c.changes).toEqual([]);
    expect(c.reason).toBe('release 1.0.0 is current; health: HTTP 200, version "1.0.0"');
  });

  it('a new version: upload, install, drain, switch, activate, health, ready — in that order', () => {
    const p = P({ drain: { hosts: ['lb1', 'lb2'], backend: 'api', server: 'api1', socket: '/run/haproxy/admin.sock', timeoutMs: 1000 } });
    const c = decideRelease(p, A('2.0.0', 'bbb'), state({ marker: null }));
    expect(c.changes.map((x) => x.what)).toEqual([
      'upload release 2.0.0', 'install dependencies: npm ci --omit=dev', 'drain api/api1 on lb1, lb2', 'current',
      'activate: systemctl reload-or-restart pm2-api', 'wait until http://127.0.0.1/health answers version 2.0.0', 'ready api/api1 on lb1, lb2',
    ]);
    expect(c.diff).toEqual([{ kind: 'value', name: '/srv/api/current', before: '1.0.0', after: '2.0.0' }]);
  });

  it('rollback to a release still on the host: no upload, only the switch', () => {
    const c = decideRelease(P(), A('1.0.0'), state({ current: 'releases/2.0.0', marker: 'aaa', releases: ['2.0.0', '1.0.0'], health: healthy('2.0.0') }));
    expect(c.changes.map((x) => x.what)).toEqual(['current', 'activate: systemctl reload-or-restart pm2-api', 'wait until http://127.0.0.1/health answers version 1.0.0']);
  });

  it('current but unhealthy (a failed deploy, a crashed app): activate again', () => {
    const c = decideRelease(P(), A('1.0.0'), state({ health: { ok: false, summary: 'HTTP 503' } }));
    expect(c.changes[0]).toEqual({ what: 'activate: systemctl reload-or-restart pm2-api', from: 'health: HTTP 503' });
  });

  it('the same version with other content is refused: releases are immutable', () => {
    expect(() => decideRelease(P(), A('1.0.0', 'ccc'), state())).toThrow(/releases\/1\.0\.0 holds other content .* a release is immutable/);
  });

  it('keeps `keep` releases: the new one, the one it replaces, the newest others', () => {
    const s = state({ current: 'releases/4', releases: ['4', '3', '2', '1'], health: healthy('4') });
    const c = decideRelease(P({ keep: 3 }), A('5', 'new'), { ...s, marker: null });
    expect(c.changes.at(-1)).toEqual({ what: 'remove old releases', from: '2, 1' });
  });
});

describe('app.release check and apply', () => {
  it('reads current, the marker, the releases and the health in one round trip', () => {
    const p = P();
    const script = stateScript(p, '1.0.0');
    expect(script).toContain("readlink -- /srv/api/current");
    expect(script).toContain("cat -- /srv/api/releases/1.0.0/.infra-release");
    const s = parseState(
      ['@@infra-app@@current', 'releases/1.0.0', '@@infra-app@@marker', 'aaa', '@@infra-app@@releases',
        '100 /srv/api/releases/0.9.0/.infra-release', '200 /srv/api/releases/1.0.0/.infra-release',
        '@@infra-app@@health', '{"version":"1.0.0"}', '@@http_code=200', ''].join('\n'),
      p, '1.0.0',
    );
    expect(s).toEqual({ current: 'releases/1.0.0', marker: 'aaa', releases: ['1.0.0', '0.9.0'], health: healthy('1.0.0') });
  });

  it('apply: upload, unpack as root with install as the user, switch by rename, activate, health', async () => {
    const dir = appDir('2.0.0');
    const p = P({ artifact: dir });
    const host = fakeHost([{}, {}, {}, {}, { stdout: '{"version":"2.0.0"}\n@@http_code=200\n' }]);
    const a = await loadArtifact(p);
    const c = changes(decideRelease(p, a, state({ marker: null })));
    await release.module.apply(host, p, c);
    expect(host.puts.map((x) => [x.path, x.opts?.mode])).toEqual([['/srv/api/releases/.2.0.0.tar.gz', '0600']]);
    const [mkdir, unpack, sw, activate, health] = host.commands;
    expect(mkdir).toBe('mkdir -p -- /srv/api/releases');
    expect(unpack).toContain('runuser -u api -- env HOME="$home" sh -c \'npm ci --omit=dev\'');
    expect(unpack.indexOf('chown -R root:root')).toBeGreaterThan(unpack.indexOf('runuser'));
    expect(unpack).toMatch(/mv -T -- \/srv\/api\/releases\/\.2\.0\.0\.partial \/srv\/api\/releases\/2\.0\.0$/);
    expect(sw).toBe('ln -sfn -- releases/2.0.0 /srv/api/.current.infra && mv -T -- /srv/api/.current.infra /srv/api/current');
    expect(activate).toBe('systemctl reload-or-restart pm2-api');
    expect(health).toContain('curl -sS -m 5');
  });

  it('apply: a failing health check fails with what it saw and how to roll back', async () => {
    const p = P({ artifact: appDir('3.0.0'), health: { url: 'http://127.0.0.1/health', versionField: 'version', timeoutMs: 1 } });
    const a = await loadArtifact(p);
    const c = changes(decideRelease(p, a, { ...state({ current: 'releases/2.0.0', releases: ['2.0.0'], health: healthy('2.0.0') }), marker: null }));
    const host = fakeHost([{}, {}, {}, {}, { stdout: '{"status":"broken"}\n@@http_code=503\n' }]);
    await expect(release.module.apply(host, p, c)).rejects.toThrow(/release 3\.0\.0 failed its health check: http:\/\/127\.0\.0\.1\/health answered HTTP 503 .*\n.*Roll back: apply release 2\.0\.0 again/);
  });
});
