/**
 * `infra patch` through the real CLI, where no host is needed: the maintenance window refuses
 * before anything connects (and says when it opens), --force-window passes it, bad policies
 * are input errors with file:line (exit 2).
 */
import { describe, it, expect, afterEach, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { infra } from '../cli/run-cli.js';
import { tmpTree, removeTrees } from '../inventory/tmp-tree.js';

// The runs that get past the gates write an audit record: into a temp state dir, not the user's.
const state = mkdtempSync(join(tmpdir(), 'infra-patch-state-'));
const saved = process.env.XDG_STATE_HOME;
beforeAll(() => {
  process.env.XDG_STATE_HOME = state;
});
afterAll(() => {
  if (saved === undefined) delete process.env.XDG_STATE_HOME;
  else process.env.XDG_STATE_HOME = saved;
  rmSync(state, { recursive: true, force: true });
});
afterEach(removeTrees);

/** Hosts that cannot be logged into (no key, port 1 on loopback): a run that gets past the gates fails fast. */
const HOSTS = `hosts:
  web1: { address: 127.0.0.1, port: 1, groups: [web] }
  db1: { address: 127.0.0.1, port: 1, groups: [db] }
groups:
  web: {}
  db: {}
`;

/** A window that is certainly closed now: one hour, starting 3 hours from now, today (UTC). */
function closedWindow(): string {
  const h = (new Date().getUTCHours() + 3) % 24;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `daily ${pad(h)}:00-${pad((h + 1) % 24)}:00 UTC`;
}

function inventory(vars: Record<string, string>): string {
  return tmpTree({ 'hosts.yaml': HOSTS, known_hosts: '', ...Object.fromEntries(Object.entries(vars).map(([g, v]) => [`group_vars/${g}.yaml`, v])) });
}

describe('infra patch: maintenance windows', () => {
  it('refuses outside the window before connecting, saying when it opens next (exit 2)', async () => {
    const dir = inventory({ all: `patch_windows: { nightly: "${closedWindow()}" }\npatch: { window: nightly }\n` });
    const r = await infra(['patch', '-i', dir, '--report-dir', `${dir}/reports`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/outside the maintenance window: nothing was patched\n {2}window "nightly" is closed for web1, db1: it opens next \w{3} \d{4}-\d\d-\d\d \d\d:00 UTC \(in (2|3) h( \d+ min)?\)/);
    expect(r.stderr).toMatch(/hint: .*--force-window/);
    expect(r.stderr).not.toMatch(/unreachable|connect/i);
  });

  it('--force-window passes the gate (the hosts are then tried: they fail here, exit 1)', async () => {
    const dir = inventory({ all: `patch_windows: { nightly: "${closedWindow()}" }\npatch: { window: nightly }\n` });
    const r = await infra(['patch', '-i', dir, '--force-window', '--report-dir', `${dir}/reports`]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/\[web1\] (UNREACHABLE|FAILED)/);
    expect(r.stderr).toMatch(/patch report: .*\.json/);
  });

  it('--check is read-only: it runs outside the window (and reports the window closed)', async () => {
    const dir = inventory({ all: `patch_windows: { nightly: "${closedWindow()}" }\npatch: { window: nightly }\n` });
    const r = await infra(['patch', '-i', dir, '--check', '--report-dir', `${dir}/reports`]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/outside the maintenance window/);
  });

  it('--window NAME patches the hosts of that window only; an unknown one is an input error', async () => {
    const dir = inventory({
      all: `patch_windows: { nightly: "${closedWindow()}", always: "daily 00:00-24:00 UTC" }\npatch: { window: nightly }\n`,
      db: 'patch: { window: always }\n',
    });
    const open = await infra(['patch', '-i', dir, '--window', 'always', '--report-dir', `${dir}/reports`]);
    expect(open.code).toBe(1); // past the gate: db1 is tried (and fails); web1 is not part of this run
    expect(open.stdout).toMatch(/\[db1\] (UNREACHABLE|FAILED)/);
    expect(open.stdout).not.toMatch(/web1/);
    const none = await infra(['patch', '-i', dir, '--window', 'weekly']);
    expect([none.code, none.stderr]).toEqual([2, expect.stringMatching(/no selected host is patched in window "weekly"/)]);
  });
});

describe('infra patch: bad input', () => {
  it('an invalid policy is an input error with file:line, before connecting (exit 2)', async () => {
    const dir = inventory({ web: 'firewall: {}\npatch: { strategy: haproxy-drain, serial: 0 }\n' });
    const r = await infra(['patch', '-i', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/group_vars\/web\.yaml:2:1: patch\.serial \(host web1\)/);
  });

  it('--security-only and --all exclude each other', async () => {
    const r = await infra(['patch', '-i', 'lab', '--security-only', '--all']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--security-only.*cannot be used with.*--all/);
  });
});
