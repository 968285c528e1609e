import { describe, it, expect } from 'vitest';
import { spawnSync, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildRecord, sealRecord, verifyChain, appendLocal, defaultAuditFile, remoteAppendScript, appendRemote, gitState, type AuditDraft, type RunSummary } from '../../../src/audit/index.js';
import { registerSecretValue, Secret } from '../../../src/secrets/secret.js';

const tsx = resolve(__dirname, '../../../node_modules/.bin/tsx');
const tmp = () => mkdtempSync(join(tmpdir(), 'infra-audit-'));

function summary(over: Partial<RunSummary> = {}): RunSummary {
  return {
    runId: 'r1',
    commandLine: 'infra apply -i prod -l db1',
    inventory: 'prod',
    limit: 'db1',
    mode: 'apply',
    recap: [
      { host: 'db1', ok: 5, changed: 2, failed: 0, skipped: 1, unreachable: false, durationMs: 10 },
      { host: 'db2', ok: 7, changed: 0, failed: 0, skipped: 0, unreachable: false, durationMs: 10 },
    ],
    changedTasks: { db1: ['postgres: files.template /etc/postgresql/15/main/postgresql.conf', 'postgres: systemd.service postgresql'] },
    started: Date.UTC(2026, 0, 2, 3, 4, 5),
    ended: Date.UTC(2026, 0, 2, 3, 5, 0),
    exitCode: 0,
    user: 'alice',
    controller: 'laptop',
    git: { commit: 'a'.repeat(40), dirty: true },
    ...over,
  };
}

function chainOf(n: number): string[] {
  const lines: string[] = [];
  let prev: string | null = null;
  for (let i = 0; i < n; i++) {
    const { line, record } = sealRecord(buildRecord(summary({ runId: `run${i}` })), prev);
    lines.push(line);
    prev = record.hash;
  }
  return lines;
}

describe('audit records', () => {
  it('carry who, what, where and the outcome', () => {
    const d = buildRecord(summary());
    expect(d).toEqual({
      v: 1,
      runId: 'r1',
      user: 'alice',
      controller: 'laptop',
      git: { commit: 'a'.repeat(40), dirty: true },
      command: 'infra apply -i prod -l db1',
      inventory: 'prod',
      limit: 'db1',
      mode: 'apply',
      hosts: {
        db1: { ok: 5, changed: 2, failed: 0, skipped: 1, unreachable: false, changedTasks: summary().changedTasks.db1 },
        db2: { ok: 7, changed: 0, failed: 0, skipped: 0, unreachable: false, changedTasks: [] },
      },
      start: '2026-01-02T03:04:05.000Z',
      end: '2026-01-02T03:05:00.000Z',
      result: 'changed',
      exitCode: 0,
    });
    expect(buildRecord(summary({ aborted: true })).result).toBe('aborted');
    const unreachable = summary().recap.map((r) => ({ ...r, changed: 0 }));
    unreachable[1] = { ...unreachable[1], unreachable: true, error: 'timed out' };
    expect(buildRecord(summary({ recap: unreachable })).result).toBe('failed');
  });

  it('mask registered secrets in the command line, errors and task names', () => {
    const canary = `canary-${Math.random().toString(36).slice(2)}`;
    registerSecretValue(canary);
    const s = new Secret(`${canary}-2`);
    const recap = [{ host: 'db1', ok: 0, changed: 0, failed: 1, skipped: 0, unreachable: false, error: `psql: auth failed for ${s.reveal()}`, durationMs: 1 }];
    const d = buildRecord(summary({ commandLine: `infra apply -i prod -e db_password=${canary}`, recap, changedTasks: { db1: [`set ${canary}`] } }));
    const text = JSON.stringify(d);
    expect(text).not.toContain(canary);
    expect(d.command).toBe('infra apply -i prod -e db_password=********');
    expect(d.hosts.db1.error).toBe('psql: auth failed for ********');
  });

  it('git state of the inventory repository: commit and dirty flag, null outside a repository', () => {
    const repo = tmp();
    const git = (...a: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.email=t@t', '-c', 'user.name=t', ...a], { encoding: 'utf8' });
    git('init', '-q');
    writeFileSync(join(repo, 'hosts.yaml'), 'hosts: {}\n');
    git('add', '.');
    git('commit', '-qm', 'x');
    const head = git('rev-parse', 'HEAD').trim();
    mkdirSync(join(repo, 'inv'));
    expect(gitState(repo)).toEqual({ commit: head, dirty: false });
    writeFileSync(join(repo, 'hosts.yaml'), 'hosts: {a: {}}\n');
    expect(gitState(repo)).toEqual({ commit: head, dirty: true });
    expect(gitState(tmp())).toBeNull();
    expect(buildRecord(summary({ git: undefined, inventoryDir: repo })).git).toEqual({ commit: head, dirty: true });
  });
});

describe('the hash chain', () => {
  it('verifies an intact chain', () => {
    expect(verifyChain([...chainOf(4), ''])).toEqual({ ok: true, count: 4 });
    expect(verifyChain([])).toEqual({ ok: true, count: 0 });
  });

  it('detects an edited line', () => {
    const lines = chainOf(4);
    lines[2] = lines[2].replace('"user":"alice"', '"user":"mallory"');
    expect(verifyChain(lines)).toMatchObject({ ok: false, brokenAt: 3, reason: expect.stringContaining('the line was edited') });
  });

  it('detects an edited line whose hash was recomputed (the next line breaks)', () => {
    const lines = chainOf(4);
    const rec = JSON.parse(lines[1]) as AuditDraft & { prev: string; hash?: string };
    delete rec.hash;
    lines[1] = sealRecord({ ...rec, user: 'mallory' }, rec.prev).line;
    expect(verifyChain(lines)).toMatchObject({ ok: false, brokenAt: 3, reason: expect.stringContaining('deleted, inserted or reordered') });
  });

  it('detects a deleted line, in the middle or at the start', () => {
    const lines = chainOf(4);
    expect(verifyChain([lines[0], lines[1], lines[3]])).toMatchObject({ ok: false, brokenAt: 3 });
    expect(verifyChain(lines.slice(1))).toMatchObject({ ok: false, brokenAt: 1, reason: expect.stringContaining('continues an earlier chain') });
    expect(verifyChain(lines.slice(1), { continued: true })).toEqual({ ok: true, count: 3 });
  });

  it('detects reordered lines', () => {
    const [a, b, c, d] = chainOf(4);
    expect(verifyChain([a, c, b, d])).toMatchObject({ ok: false, brokenAt: 2 });
  });

  it('names garbage and blank lines', () => {
    const lines = chainOf(2);
    expect(verifyChain([lines[0], 'not json', lines[1]])).toMatchObject({ ok: false, brokenAt: 2, reason: 'not valid JSON' });
    expect(verifyChain([lines[0], '', lines[1]])).toMatchObject({ ok: false, brokenAt: 2, reason: 'empty line' });
  });
});

describe('the local audit file', () => {
  it('lives under XDG_STATE_HOME (or ~/.local/state)', () => {
    expect(defaultAuditFile({ XDG_STATE_HOME: '/x/state' })).toBe('/x/state/infra/audit.jsonl');
    expect(defaultAuditFile({})).toMatch(/\/\.local\/state\/infra\/audit\.jsonl$/);
  });

  it('appends chained lines to a 0600 file, creating its directory', async () => {
    const file = join(tmp(), 'state', 'infra', 'audit.jsonl');
    const r1 = await appendLocal(buildRecord(summary({ runId: 'a' })), file);
    const r2 = await appendLocal(buildRecord(summary({ runId: 'b' })), file);
    expect(r1.prev).toBeNull();
    expect(r2.prev).toBe(r1.hash);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(verifyChain(lines)).toEqual({ ok: true, count: 2 });
  });

  it('appends from concurrent processes stay one chain', async () => {
    const file = join(tmp(), 'audit.jsonl');
    const writers = ['a', 'b', 'c'].map(
      (tag) =>
        new Promise<number | null>((done) =>
          spawn(tsx, [resolve(__dirname, 'helpers/append-many.ts'), file, '300', tag], { stdio: 'inherit' }).on('exit', done),
        ),
    );
    expect(await Promise.all(writers)).toEqual([0, 0, 0]);
    expect(verifyChain(readFileSync(file, 'utf8').split('\n'))).toEqual({ ok: true, count: 900 });
  });
});

describe('appending on a host (sh + coreutils)', () => {
  const nasty = 'infra exec -i prod -- echo "quo\'tes" \\back\\slash $HOME `id` ünïcödé %s %n \t tab';
  for (const shell of ['/bin/dash', '/bin/bash']) {
    it(`extends the host's chain with the same hashes node computes (${shell})`, async () => {
      const dir = tmp();
      const file = join(dir, 'log', 'infra', 'audit.jsonl');
      const run = async (cmd: string, o: { stdin: string }) => {
        const r = spawnSync(shell, ['-c', cmd], { input: o.stdin, encoding: 'utf8' });
        return { code: r.status ?? 1, stderr: r.stderr };
      };
      // First line from the controller side, then two from the "host" script.
      await appendLocal(buildRecord(summary({ runId: 'local' })), file);
      expect(await appendRemote(run, buildRecord(summary({ runId: 'remote1', commandLine: nasty })), file)).toEqual({ ok: true });
      expect(await appendRemote(run, buildRecord(summary({ runId: 'remote2', limit: undefined, git: null })), file)).toEqual({ ok: true });
      const lines = readFileSync(file, 'utf8').split('\n');
      expect(verifyChain(lines)).toEqual({ ok: true, count: 3 });
      expect(JSON.parse(lines[1]).command).toBe(nasty);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      // And the script starts a chain in an empty file.
      const fresh = join(dir, 'fresh.jsonl');
      await appendRemote(run, buildRecord(summary()), fresh);
      expect(verifyChain(readFileSync(fresh, 'utf8').split('\n'))).toEqual({ ok: true, count: 1 });
    });
  }

  it('sends the record on stdin, never in the command', () => {
    const canary = `canary-${Math.random().toString(36).slice(2)}`;
    const { command, stdin } = remoteAppendScript(buildRecord(summary({ runId: canary })));
    expect(command).not.toContain(canary);
    expect(stdin).toContain(canary);
    expect(command).toContain("f=/var/log/infra/audit.jsonl");
  });

  it('reports a failure as a result', async () => {
    const r = await appendRemote(async () => ({ code: 1, stderr: 'mkdir: Permission denied\n' }), buildRecord(summary()));
    expect(r).toEqual({ ok: false, error: 'audit append failed (exit 1): mkdir: Permission denied' });
  });
});

describe('infra audit (CLI)', () => {
  const cli = (...args: string[]) => spawnSync(tsx, [resolve(__dirname, 'helpers/audit-cli.ts'), 'audit', ...args], { encoding: 'utf8' });

  it('verify: ok, then names the first broken line with exit 1; log: a table of runs', () => {
    const file = join(tmp(), 'audit.jsonl');
    const lines = chainOf(3);
    writeFileSync(file, lines.join('\n') + '\n');
    const ok = cli('verify', file);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe(`${file}: ok, 3 record(s), chain intact\n`);
    writeFileSync(file, [lines[0], lines[2]].join('\n') + '\n');
    const bad = cli('verify', file);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain(`${file}:2: chain broken: its prev does not match line 1's hash`);
    const log = cli('log', file, '-n', '1');
    expect(log.status).toBe(0);
    const [head, row, extra] = log.stdout.split('\n');
    expect(head).toMatch(/^START +RUN +USER +MODE +RESULT +HOSTS +CHANGED +FAILED +INVENTORY +GIT +COMMAND$/);
    expect(row).toMatch(/^2026-01-02 03:04:05 +run2 +alice@laptop +apply +changed +2 +1 +0 +prod \(db1\) +aaaaaaaa\+dirty +infra apply -i prod -l db1$/);
    expect(extra).toBe('');
  });
});

describe('recordRun (what the engine calls)', () => {
  it('appends locally, and on the changed hosts only; check mode writes no host', async () => {
    const { recordRun } = await import('../../../src/audit/index.js');
    const dir = tmp();
    const localFile = join(dir, 'local.jsonl');
    const hostFile = (h: string) => join(dir, `${h}.jsonl`);
    const touched: string[] = [];
    const runOn = (host: string) => async (cmd: string, o: { stdin: string }) => {
      touched.push(host);
      const r = spawnSync('/bin/sh', ['-c', cmd.replace(`f=${hostFile('X')}`, `f=${hostFile(host)}`)], { input: o.stdin, encoding: 'utf8' });
      return { code: r.status ?? 1, stderr: r.stderr };
    };
    const r = await recordRun(summary(), { runOn, localFile, remotePath: hostFile('X') });
    expect(r.local.ok).toBe(true);
    expect(r.remote).toEqual({ db1: { ok: true } });
    expect(touched).toEqual(['db1']);
    expect(verifyChain(readFileSync(hostFile('db1'), 'utf8').split('\n'))).toEqual({ ok: true, count: 1 });
    await recordRun(summary({ mode: 'check' }), { runOn, localFile, remotePath: hostFile('X') });
    expect(touched).toEqual(['db1']);
    expect(verifyChain(readFileSync(localFile, 'utf8').split('\n'))).toEqual({ ok: true, count: 2 });
  });
});
