import { describe, it, expect } from 'vitest';
import { spawnSync, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync, mkdirSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import {
  appendLocal,
  appendRemote,
  buildRecord,
  crossCheck,
  defaultAuditFile,
  defaultAuditKeyFile,
  gitState,
  loadSigningKey,
  loadVerifyKey,
  publicKeyPem,
  recipients,
  remoteAppendScript,
  sealRecord,
  verifyChain,
  type AuditDraft,
  type AuditRecord,
  type ChainHead,
  type RunSummary,
  type SigningKey,
  type VerifyKey,
} from '../../../src/audit/index.js';
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

const KEY = loadSigningKey(join(tmp(), 'audit-key.pem'));
const MALLORY = loadSigningKey(join(tmp(), 'mallory.pem'));

/** A signed chain of n records (run0, run1, ...), and the records. */
function chainOf(n: number, key: SigningKey = KEY, over: (i: number) => Partial<RunSummary> = () => ({})): { lines: string[]; records: AuditRecord[] } {
  const lines: string[] = [];
  const records: AuditRecord[] = [];
  let head: ChainHead | null = null;
  for (let i = 0; i < n; i++) {
    const { line, record } = sealRecord(buildRecord(summary({ runId: `run${i}`, ...over(i) })), head, key);
    lines.push(line);
    records.push(record);
    head = { seq: record.seq, sig: record.sig };
  }
  return { lines, records };
}

/** What someone without the key can do: rewrite every record and chain them again, under their own key. */
function rewriteAll(lines: string[], key: SigningKey, edit: (r: AuditDraft) => AuditDraft): string[] {
  let head: ChainHead | null = null;
  return lines.map((l) => {
    const { seq: _s, prev: _p, key: _k, sig: _g, ...draft } = JSON.parse(l) as AuditRecord;
    const sealed = sealRecord(edit(draft), head, key);
    head = { seq: sealed.record.seq, sig: sealed.record.sig };
    return sealed.line;
  });
}

const verify = (lines: string[], o: { continued?: boolean; keys?: VerifyKey[] } = {}) => verifyChain(lines, { keys: o.keys ?? [KEY], continued: o.continued });

describe('audit records', () => {
  it('carry who, what, where and the outcome', () => {
    const d = buildRecord(summary());
    expect(d).toEqual({
      v: 2,
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
    expect(buildRecord(summary({ aborted: true, exitCode: 130 })).result).toBe('aborted');
    // The first Ctrl-C: what ran finished, the rest never started.
    expect(buildRecord(summary({ exitCode: 130 })).result).toBe('interrupted');
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

describe('the signing key', () => {
  it('lives apart from the log: $INFRA_AUDIT_KEY, else $XDG_CONFIG_HOME (~/.config)/infra/audit-key.pem', () => {
    expect(defaultAuditKeyFile({ INFRA_AUDIT_KEY: '/k/audit.pem', XDG_CONFIG_HOME: '/x' })).toBe('/k/audit.pem');
    expect(defaultAuditKeyFile({ XDG_CONFIG_HOME: '/x/config' })).toBe('/x/config/infra/audit-key.pem');
    expect(defaultAuditKeyFile({})).toMatch(/\/\.config\/infra\/audit-key\.pem$/);
    expect(dirname(defaultAuditKeyFile({}))).not.toBe(dirname(defaultAuditFile({})));
  });

  it('is created 0600 in a 0700 directory on first use, then reused', () => {
    const file = join(tmp(), 'cfg', 'infra', 'audit-key.pem');
    const a = loadSigningKey(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(file)).mode & 0o777).toBe(0o700);
    expect(readFileSync(file, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(loadSigningKey(file).id).toBe(a.id);
    expect(a.id).toMatch(/^[0-9a-f]{16}$/);
  });

  it('is refused when others can read it, or when it is not an ed25519 PEM key', () => {
    const file = join(tmp(), 'audit-key.pem');
    loadSigningKey(file);
    chmodSync(file, 0o644);
    expect(() => loadSigningKey(file)).toThrow(/readable by others \(mode 0644\)/);
    const junk = join(tmp(), 'junk.pem');
    writeFileSync(junk, 'not a key\n', { mode: 0o600 });
    expect(() => loadSigningKey(junk)).toThrow(/not a PEM key/);
  });

  it('verifies from the public key alone (what `infra audit key` prints), or from the private key file', () => {
    const pub = join(tmp(), 'audit.pub');
    writeFileSync(pub, publicKeyPem(KEY));
    const { lines } = chainOf(3);
    expect(verify(lines, { keys: [loadVerifyKey(pub)] })).toMatchObject({ ok: true, count: 3 });
    expect(loadVerifyKey(pub).id).toBe(KEY.id);
    expect(() => loadVerifyKey(join(tmp(), 'missing.pub'))).toThrow(/no audit key at .*missing\.pub/);
  });
});

describe('the signed chain', () => {
  it('verifies an intact chain and reports its head', () => {
    const { lines, records } = chainOf(4);
    expect(verify([...lines, ''])).toEqual({ ok: true, count: 4, head: { seq: 4, sig: records[3].sig } });
    expect(records.map((r) => [r.seq, r.prev])).toEqual([[1, null], [2, records[0].sig], [3, records[1].sig], [4, records[2].sig]]);
    expect(records.every((r) => r.key === KEY.id)).toBe(true);
    expect(verify([])).toEqual({ ok: true, count: 0 });
  });

  it('the line is the canonical JSON with the signature last', () => {
    const { lines } = chainOf(1);
    expect(lines[0]).toMatch(/^\{"command":.*"key":"[0-9a-f]{16}",.*"prev":null,.*"seq":1,.*"v":2,"sig":"[A-Za-z0-9+/]+={0,2}"\}$/);
  });

  it('detects an edited line', () => {
    const { lines } = chainOf(4);
    lines[2] = lines[2].replace('"user":"alice"', '"user":"mallory"');
    expect(verify(lines)).toMatchObject({ ok: false, brokenAt: 3, count: 2, reason: expect.stringContaining('the line was edited') });
  });

  it('detects a rewritten and re-chained file: without the key, no line verifies', () => {
    const { lines } = chainOf(4);
    const forged = rewriteAll(lines, MALLORY, (r) => ({ ...r, user: 'mallory' }));
    expect(verify(forged)).toMatchObject({ ok: false, brokenAt: 1, reason: expect.stringContaining(`signed by key ${MALLORY.id}, which is not among the trusted keys`) });
    // Claiming the trusted key's id does not help: the signature is checked.
    const claimed = forged.map((l) => l.replace(`"key":"${MALLORY.id}"`, `"key":"${KEY.id}"`));
    expect(verify(claimed)).toMatchObject({ ok: false, brokenAt: 1, reason: expect.stringContaining('signature does not match') });
  });

  it('a wrong key verifies nothing', () => {
    const { lines } = chainOf(2);
    expect(verify(lines, { keys: [MALLORY] })).toMatchObject({ ok: false, brokenAt: 1, reason: expect.stringContaining('not among the trusted keys') });
  });

  it('detects a deleted line, in the middle or at the start', () => {
    const { lines } = chainOf(4);
    expect(verify([lines[0], lines[1], lines[3]])).toMatchObject({ ok: false, brokenAt: 3, reason: expect.stringContaining('does not follow line 2 (seq 2)') });
    expect(verify(lines.slice(1))).toMatchObject({ ok: false, brokenAt: 1, reason: expect.stringContaining('continues an earlier chain') });
    expect(verify(lines.slice(1), { continued: true })).toMatchObject({ ok: true, count: 3 });
  });

  it('cannot see a cut tail by itself (the hosts can: see crossCheck)', () => {
    const { lines } = chainOf(4);
    expect(verify(lines.slice(0, 2))).toMatchObject({ ok: true, count: 2 });
  });

  it('detects reordered lines', () => {
    const [a, b, c, d] = chainOf(4).lines;
    expect(verify([a, c, b, d])).toMatchObject({ ok: false, brokenAt: 2 });
  });

  it('names garbage and blank lines, and unsigned (v1) lines anywhere but before the first signed one', () => {
    const { lines } = chainOf(2);
    expect(verify([lines[0], 'not json', lines[1]])).toMatchObject({ ok: false, brokenAt: 2, reason: 'not valid JSON' });
    expect(verify([lines[0], '', lines[1]])).toMatchObject({ ok: false, brokenAt: 2, reason: 'empty line' });
    const v1 = JSON.stringify({ v: 1, runId: 'old', prev: null, hash: 'a'.repeat(64) });
    expect(verify([v1, ...lines])).toMatchObject({ ok: true, count: 2, unsigned: 1 });
    expect(verify([lines[0], v1, lines[1]])).toMatchObject({ ok: false, brokenAt: 2, count: 1, reason: expect.stringContaining('not a signed record (format v1') });
  });
});

describe('cross-checking the controller file with a host copy', () => {
  // db1 changes in every run; db2 in none (the summary's recap); exec runs go to both.
  const keys = [KEY];

  it('agrees when the host holds the lines the controller signed', () => {
    const { lines } = chainOf(4);
    expect(crossCheck(lines, 'db1', [...lines, ''], keys)).toEqual({ host: 'db1', matched: 4, head: 4, problems: [], notes: [] });
    expect(crossCheck(lines, 'db2', [], keys)).toEqual({ host: 'db2', matched: 0, problems: [], notes: [] });
  });

  it('a tail cut from the controller file: the host holds later records', () => {
    const { lines } = chainOf(4);
    const c = crossCheck(lines.slice(0, 2), 'db1', lines, keys);
    expect(c.problems).toEqual([
      expect.stringMatching(/^run run2 \(seq 3, .*\) is on db1, but the controller's file ends at seq 2: records were cut from its end$/),
      expect.stringMatching(/^run run3 \(seq 4, .*\) is on db1, but the controller's file ends at seq 2/),
    ]);
  });

  it('a file rewritten and re-chained by someone holding the key: the hosts still have the originals', () => {
    const { lines } = chainOf(4);
    const rewritten = rewriteAll(lines, KEY, (r) => (r.runId === 'run1' ? { ...r, command: 'infra apply -i prod --check' } : r));
    expect(verify(rewritten)).toMatchObject({ ok: true, count: 4 }); // the key holder's forgery verifies locally...
    const c = crossCheck(rewritten, 'db1', lines, keys); // ...but not against the host
    expect(c.problems).toEqual([
      expect.stringMatching(/^run run1 \(seq 2, .*\): the controller's copy differs from db1's: one of them was rewritten$/),
      expect.stringMatching(/^run run2 .*differs/),
      expect.stringMatching(/^run run3 .*differs/),
    ]);
    expect(c.matched).toBe(1);
    // A wholesale replacement under a new key leaves the host's records unexplained.
    const replaced = crossCheck(rewriteAll(lines, MALLORY, (r) => r), 'db1', lines, keys);
    expect(replaced.problems[0]).toMatch(/holds no record signed by key .*: the file was replaced/);
  });

  it('records removed on the controller, removed on the host, or edited on the host', () => {
    const { lines } = chainOf(5);
    const midGone = [...lines.slice(0, 2), ...lines.slice(3)];
    expect(crossCheck(midGone, 'db1', lines, keys).problems).toEqual([expect.stringMatching(/^run run2 \(seq 3, .*\) is on db1, but not in the controller's file: it was removed there$/)]);
    const hostLost = crossCheck(lines, 'db1', [lines[0], lines[1], lines[3], lines[4]], keys);
    expect(hostLost.problems).toEqual([expect.stringMatching(/^run run2 \(seq 3, .*\) touched db1, but db1 has no copy: removed on the host, or the append failed at the time$/)]);
    const edited = [...lines];
    edited[1] = edited[1].replace('"user":"alice"', '"user":"bob"');
    expect(crossCheck(lines, 'db1', edited, keys).problems).toEqual([
      "line 2 of db1's copy: its signature does not match its content: the line was edited",
      expect.stringMatching(/^run run1 \(seq 2, .*\) touched db1, but db1 has no copy/),
    ]);
  });

  it("notes, without failing, runs before the host's first record, unsigned records and other controllers' records", () => {
    const { lines } = chainOf(4);
    const other = chainOf(1, MALLORY, () => ({ runId: 'theirs', user: 'bob', controller: 'ci' })).lines[0];
    const v1 = JSON.stringify({ v: 1, runId: 'old', prev: null, hash: 'a'.repeat(64) });
    const c = crossCheck(lines, 'db1', [v1, lines[2], other, lines[3]], keys);
    expect(c.problems).toEqual([]);
    expect(c.matched).toBe(2);
    expect(c.notes).toEqual([
      '2 earlier run(s) touched db1 before its first record here (a rebuilt host, or its log was removed)',
      '1 unsigned record(s) from before signing: not checked',
      `records signed by key ${MALLORY.id} (bob@ci): not checked, pass --key to include them`,
    ]);
  });
});

describe('which hosts keep a copy', () => {
  it('apply: the changed hosts; exec: every host it ran on; check: none', () => {
    const recap = [
      { host: 'a', ok: 1, changed: 1, failed: 0, skipped: 0, unreachable: false, durationMs: 1 },
      { host: 'b', ok: 1, changed: 0, failed: 1, skipped: 0, unreachable: false, durationMs: 1 },
      { host: 'c', ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: true, durationMs: 1 },
    ];
    expect(recipients(buildRecord(summary({ recap })))).toEqual(['a']);
    expect(recipients(buildRecord(summary({ recap, mode: 'exec' })))).toEqual(['a', 'b']);
    expect(recipients(buildRecord(summary({ recap, mode: 'check' })))).toEqual([]);
  });
});

describe('the local audit file', () => {
  it('lives under XDG_STATE_HOME (or ~/.local/state)', () => {
    expect(defaultAuditFile({ XDG_STATE_HOME: '/x/state' })).toBe('/x/state/infra/audit.jsonl');
    expect(defaultAuditFile({})).toMatch(/\/\.local\/state\/infra\/audit\.jsonl$/);
  });

  it('appends signed, chained lines to a 0600 file, creating its directory', async () => {
    const file = join(tmp(), 'state', 'infra', 'audit.jsonl');
    const r1 = await appendLocal(buildRecord(summary({ runId: 'a' })), KEY, file);
    const r2 = await appendLocal(buildRecord(summary({ runId: 'b' })), KEY, file);
    expect([r1.record.seq, r1.record.prev]).toEqual([1, null]);
    expect([r2.record.seq, r2.record.prev]).toEqual([2, r1.record.sig]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines).toEqual([r1.line, r2.line, '']);
    expect(verify(lines)).toMatchObject({ ok: true, count: 2 });
  });

  it('after unsigned records from before signing, starts a new chain that verify checks (the old lines counted apart)', async () => {
    const file = join(tmp(), 'audit.jsonl');
    const v1 = JSON.stringify({ v: 1, runId: 'old', prev: null, hash: 'a'.repeat(64) });
    writeFileSync(file, `${v1}\n${v1}\n`, { mode: 0o600 });
    const r = await appendLocal(buildRecord(summary()), KEY, file);
    expect([r.record.seq, r.record.prev]).toEqual([1, null]);
    await appendLocal(buildRecord(summary()), KEY, file);
    expect(verify(readFileSync(file, 'utf8').split('\n'))).toMatchObject({ ok: true, count: 2, unsigned: 2, head: { seq: 2 } });
  });

  it('appends from concurrent processes stay one chain', async () => {
    const dir = tmp();
    const file = join(dir, 'audit.jsonl');
    const keyFile = join(dir, 'key.pem');
    const key = loadSigningKey(keyFile);
    const writers = ['a', 'b', 'c'].map(
      (tag) =>
        new Promise<number | null>((done) =>
          spawn(tsx, [resolve(__dirname, 'helpers/append-many.ts'), file, keyFile, '300', tag], { stdio: 'inherit' }).on('exit', done),
        ),
    );
    expect(await Promise.all(writers)).toEqual([0, 0, 0]);
    expect(verify(readFileSync(file, 'utf8').split('\n'), { keys: [key] })).toMatchObject({ ok: true, count: 900 });
  });
});

describe('appending on a host (sh + coreutils)', () => {
  const nasty = 'infra exec -i prod -- echo "quo\'tes" \\back\\slash $HOME `id` ünïcödé %s %n \t tab';
  for (const shell of ['/bin/dash', '/bin/bash']) {
    it(`keeps the controller's line byte for byte (${shell})`, async () => {
      const dir = tmp();
      const file = join(dir, 'log', 'infra', 'audit.jsonl');
      const run = async (cmd: string, o: { stdin: string }) => {
        const r = spawnSync(shell, ['-c', cmd], { input: o.stdin, encoding: 'utf8' });
        return { code: r.status ?? 1, stderr: r.stderr };
      };
      const { lines } = chainOf(3, KEY, (i) => (i === 1 ? { commandLine: nasty } : {}));
      for (const l of lines) expect(await appendRemote(run, l, file)).toEqual({ ok: true });
      expect(readFileSync(file, 'utf8')).toBe(lines.join('\n') + '\n');
      expect(JSON.parse(readFileSync(file, 'utf8').split('\n')[1]).command).toBe(nasty);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      // A line cut short earlier (a full disk) does not swallow the next one.
      writeFileSync(file, '{"cut', { flag: 'a' });
      await appendRemote(run, lines[0], file);
      expect(readFileSync(file, 'utf8').split('\n').slice(-3)).toEqual(['{"cut', lines[0], '']);
    });
  }

  it('sends the record on stdin, never in the command', () => {
    const canary = `canary-${Math.random().toString(36).slice(2)}`;
    const { command, stdin } = remoteAppendScript(chainOf(1, KEY, () => ({ runId: canary })).lines[0]);
    expect(command).not.toContain(canary);
    expect(stdin).toContain(canary);
    expect(command).toContain('f=/var/log/infra/audit.jsonl');
  });

  it('reports a failure as a result', async () => {
    const r = await appendRemote(async () => ({ code: 1, stderr: 'mkdir: Permission denied\n' }), chainOf(1).lines[0]);
    expect(r).toEqual({ ok: false, error: 'audit append failed (exit 1): mkdir: Permission denied' });
  });
});

describe('infra audit (CLI)', () => {
  const keyFile = join(tmp(), 'cfg', 'audit-key.pem');
  const cli = (...args: string[]) =>
    spawnSync(tsx, [resolve(__dirname, 'helpers/audit-cli.ts'), 'audit', ...args], { encoding: 'utf8', env: { ...process.env, INFRA_AUDIT_KEY: keyFile } });

  it('key: prints the public key, creating the key pair on first use', () => {
    const r = cli('key');
    expect(r.status, r.stderr).toBe(0);
    const key = loadSigningKey(keyFile);
    expect(r.stdout).toBe(`# infra audit key ${key.id} (private key: ${keyFile})\n${publicKeyPem(key)}`);
    expect(r.stdout).not.toContain('PRIVATE KEY-----\n');
  });

  it('verify: ok with the controller key, exit 1 on a broken chain or with a wrong key; log: a table of runs', () => {
    const key = loadSigningKey(keyFile);
    const dir = tmp();
    const file = join(dir, 'audit.jsonl');
    const { lines } = chainOf(3, key);
    writeFileSync(file, lines.join('\n') + '\n');
    const ok = cli('verify', file);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toBe(`${file}: ok, 3 record(s), chain intact, head seq 3\n`);
    const pub = join(dir, 'other.pub');
    writeFileSync(pub, publicKeyPem(MALLORY));
    const wrong = cli('verify', file, '--key', pub);
    expect(wrong.status).toBe(1);
    expect(wrong.stdout).toContain(`${file}:1: chain broken: signed by key ${key.id}, which is not among the trusted keys`);
    writeFileSync(file, [lines[0], lines[2]].join('\n') + '\n');
    const bad = cli('verify', file);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain(`${file}:2: chain broken: it does not follow line 1 (seq 1)`);
    const forged = join(dir, 'forged.jsonl');
    writeFileSync(forged, rewriteAll(lines, MALLORY, (r) => ({ ...r, user: 'mallory' })).join('\n') + '\n');
    expect(cli('verify', forged).status).toBe(1);
    const log = cli('log', file, '-n', '1');
    expect(log.status).toBe(0);
    const [head, row, extra] = log.stdout.split('\n');
    expect(head).toMatch(/^START +RUN +USER +MODE +RESULT +HOSTS +CHANGED +FAILED +INVENTORY +GIT +COMMAND$/);
    expect(row).toMatch(/^2026-01-02 03:04:05 +run2 +alice@laptop +apply +changed +2 +1 +0 +prod \(db1\) +aaaaaaaa\+dirty +infra apply -i prod -l db1$/);
    expect(extra).toBe('');
  });

  it('verify --against-hosts without -i is an input error', () => {
    const file = join(tmp(), 'audit.jsonl');
    writeFileSync(file, chainOf(1, loadSigningKey(keyFile)).lines[0] + '\n');
    const r = cli('verify', file, '--against-hosts');
    expect(r.status).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/--against-hosts needs the inventory/);
  });
});

describe('recordRun (what the engine calls)', () => {
  it('signs locally, sends the same line to the changed hosts only; check mode writes no host', async () => {
    const { recordRun } = await import('../../../src/audit/index.js');
    const dir = tmp();
    const localFile = join(dir, 'local.jsonl');
    const keyFile = join(dir, 'key.pem');
    const hostFile = (h: string) => join(dir, `${h}.jsonl`);
    const touched: string[] = [];
    const runOn = (host: string) => async (cmd: string, o: { stdin: string }) => {
      touched.push(host);
      const r = spawnSync('/bin/sh', ['-c', cmd.replace(`f=${hostFile('X')}`, `f=${hostFile(host)}`)], { input: o.stdin, encoding: 'utf8' });
      return { code: r.status ?? 1, stderr: r.stderr };
    };
    const r = await recordRun(summary(), { runOn, localFile, remotePath: hostFile('X'), keyFile });
    expect(r.local.ok).toBe(true);
    expect(r.remote).toEqual({ db1: { ok: true } });
    expect(touched).toEqual(['db1']);
    expect(readFileSync(hostFile('db1'), 'utf8')).toBe(readFileSync(localFile, 'utf8'));
    await recordRun(summary({ mode: 'check' }), { runOn, localFile, remotePath: hostFile('X'), keyFile });
    expect(touched).toEqual(['db1']);
    expect(verify(readFileSync(localFile, 'utf8').split('\n'), { keys: [loadSigningKey(keyFile)] })).toMatchObject({ ok: true, count: 2 });
    expect(existsSync(hostFile('db2'))).toBe(false);
  });

  it('without a usable key: the local error, and no host gets an unsigned record', async () => {
    const { recordRun } = await import('../../../src/audit/index.js');
    const dir = tmp();
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, 'garbage', { mode: 0o600 });
    const r = await recordRun(summary(), { runOn: () => async () => ({ code: 0, stderr: '' }), localFile: join(dir, 'a.jsonl'), keyFile });
    expect(r.local).toEqual({ ok: false, error: `${keyFile} is not a PEM key` });
    expect(r.remote).toEqual({ db1: { ok: false, error: 'no signed record to send (see the controller error)' } });
  });
});
