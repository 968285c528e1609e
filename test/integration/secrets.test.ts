/**
 * Issue 6 "Done when", end to end through the real CLI and SSH transport: a canary secret,
 * vaulted in group_vars and used in a template, a YAML task param and a command, never shows
 * in any output (apply, plan, --diff, --json, --check, a failing task's error, a plan file,
 * the audit logs, the targets' process list) yet lands intact in the files on the hosts.
 * And a vault value that cannot be decrypted stops the run before anything connects.
 * Issue 10: a secret with an apostrophe is masked in its shell-quoted form too (item 6), and
 * after a rotation the old value shows in no diff (item 5).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startFleet, type Fleet } from './fleet.js';
import { infra, taskResults, REPO, type CliResult, cliWorkspace } from './helpers/cli.js';

const PLAYBOOK = join(REPO, 'test/fixtures/playbooks/secrets/site.yaml');
const CANARY = `canary-${randomBytes(12).toString('hex')}`;
/** Shell-quoted, it becomes 'O'\''Brien-…', which does not contain the value: its tail must not show either. */
const QUOTED_TAIL = randomBytes(8).toString('hex');
const QUOTED = `O'Brien-Pass-9-${QUOTED_TAIL}`;
/** Nothing of either secret, in any form. */
const leaks = (text: string): string[] => [CANARY, QUOTED_TAIL].filter((v) => text.includes(v));

let fleet: Fleet;
let work: string;
let env: Record<string, string>;

async function encryptString(name: string, value: string, passwordFile: string): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [join(REPO, 'bin/infra'), 'vault', 'encrypt-string', '--name', name, '--stdin', '--vault-password-file', passwordFile], (err, stdout) =>
      err ? reject(err) : resolve(stdout.trim()),
    );
    child.stdin!.end(value);
  });
}

/** Every byte a run showed to a person or a machine. */
const output = (r: CliResult): string => r.stdout + r.stderr;

beforeAll(async () => {
  let passwordFile: string;
  ({ work, passwordFile, env } = await cliWorkspace('secrets', 'correct horse battery staple'));
  // One retry: on a machine shared with other test runs, a container may miss its start deadline.
  fleet = await startFleet({ targets: 2 }).catch(() => startFleet({ targets: 2 }));
  const vaulted = await encryptString('canary', CANARY, passwordFile);
  expect(vaulted).toMatch(/^!vault \$INFRA;1;/);
  expect(vaulted).not.toContain(CANARY);
  const quoted = await encryptString('quoted', QUOTED, passwordFile);
  await mkdir(join(fleet.inventoryDir, 'group_vars'), { recursive: true });
  await writeFile(join(fleet.inventoryDir, 'group_vars', 'targets.yaml'), `# the canary\ncanary: ${vaulted}\nquoted: ${quoted}\n`);
}, 300_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('a vaulted canary through a whole run', () => {
  it('plan (text, --diff, --json, --out) and apply --check --diff never show it', async () => {
    const planFile = join(work, 'plan.json');
    const runs = [
      await infra(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--skip-tags', 'fail', '--diff'], { env }),
      await infra(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--skip-tags', 'fail', '--diff', '--json', '--out', planFile], { env }),
      await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--skip-tags', 'fail', '--check', '--diff', '--json'], { env }),
      await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--skip-tags', 'fail', '--check', '--diff'], { env }),
    ];
    for (const r of runs) {
      expect(r.code, output(r)).toBe(0);
      expect(leaks(output(r))).toEqual([]);
    }
    // The diffs were there, hidden as a whole: a file that holds a secret is sensitive.
    const template = taskResults(runs[2], 'target1').find((e) => e.task.includes('secret.conf'))!;
    expect(template.status).toBe('changed');
    expect(template.diff).toMatchObject([{ kind: 'file', sensitive: true, before: null, after: '(content hidden: sensitive)' }]);
    expect(runs[0].stdout).toContain('secret.conf');
    expect(runs[0].stdout).toContain('(content hidden: sensitive; new file)');
    // The shell-quoted secret in a command's label is masked, in text and JSON.
    expect(runs[0].stdout).toMatch(/command\.run sleep 2; echo \*+ > \/opt\/infra-secrets\/cmd\.out; echo \*+ > /);
    const saved = await readFile(planFile, 'utf8');
    expect(Object.keys(JSON.parse(saved).hosts).sort()).toEqual(['target1', 'target2']);
    expect(leaks(saved)).toEqual([]);
    // Check mode changed nothing.
    expect((await fleet.exec('target1', 'test -e /opt/infra-secrets/secret.conf; echo $?')).stdout.trim()).toBe('1');
  }, 240_000);

  it('apply (text, --diff) keeps it out of output and out of the targets’ process list; the files hold it', async () => {
    const seen: string[] = [];
    let running = true;
    const poll = (async () => {
      while (running) {
        for (const t of fleet.targets) seen.push((await fleet.exec(t.name, 'ps -eo args')).stdout);
      }
    })();
    const r = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--skip-tags', 'fail', '--diff'], { env });
    running = false;
    await poll;
    expect(r.code, output(r)).toBe(0);
    expect(leaks(output(r))).toEqual([]);
    // The poll did see the slow command running (so it looked at the right moment).
    expect(seen.some((s) => /^sleep 2$/m.test(s))).toBe(true);
    expect(seen.filter((s) => leaks(s).length > 0)).toEqual([]);

    for (const t of fleet.targets) {
      expect((await fleet.exec(t.name, 'cat /opt/infra-secrets/secret.conf')).stdout).toBe(`# ${t.name}\npassword = ${CANARY}\n`);
      expect((await fleet.exec(t.name, 'cat /opt/infra-secrets/line.conf')).stdout).toBe(`password=${CANARY}\n`);
      expect((await fleet.exec(t.name, 'cat /opt/infra-secrets/cmd.out')).stdout).toBe(`${CANARY}\n`);
      expect((await fleet.exec(t.name, 'cat /opt/infra-secrets/quoted.out')).stdout).toBe(`${QUOTED}\n`);
      expect((await fleet.exec(t.name, 'cat /opt/infra-secrets/env.sh')).stdout).toBe(`export PW='O'\\''Brien-Pass-9-${QUOTED_TAIL}'\n`);
      expect((await fleet.exec(t.name, 'stat -c %a /opt/infra-secrets/secret.conf')).stdout.trim()).toBe('600');
    }
  }, 240_000);

  it('apply --json: converged (only the unguarded command runs), nothing leaks', async () => {
    const r = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--skip-tags', 'fail', '--json', '--diff'], { env });
    expect(r.code, output(r)).toBe(0);
    expect(r.changed).toBe(2); // the `slow` command on each host: it has no guard
    expect(leaks(output(r))).toEqual([]);
  }, 120_000);

  it('a failing task with the secret in its command and its stderr shows it masked', async () => {
    for (const json of [true, false]) {
      const r = await infra(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--tags', 'fail', ...(json ? ['--json'] : [])], { env });
      expect(r.code).toBe(1);
      expect(leaks(output(r))).toEqual([]);
      if (json) {
        const failed = taskResults(r).filter((e) => e.status === 'failed');
        expect(failed).toHaveLength(2);
        // The error is there, with the secret masked (in the command and in its stderr).
        expect(JSON.stringify(failed[0])).toContain('exit 3');
        expect(JSON.stringify(failed[0])).toContain('********');
      } else {
        expect(output(r)).toMatch(/fail|exit/i);
      }
    }
  }, 120_000);

  it('the audit logs (local and on the hosts) record the runs without the secret', async () => {
    const local = await readFile(join(work, 'state', 'infra', 'audit.jsonl'), 'utf8');
    const lines = local.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(6);
    expect(leaks(local)).toEqual([]);
    for (const t of fleet.targets) {
      const remote = await fleet.exec(t.name, 'cat /var/log/infra/audit.jsonl');
      expect(remote.code).toBe(0);
      expect(remote.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(2);
      expect(leaks(remote.stdout)).toEqual([]);
    }
    const verify = await infra(['audit', 'verify', join(work, 'state', 'infra', 'audit.jsonl')], { env });
    expect(verify.code, output(verify)).toBe(0);
  }, 60_000);

  it('infra exec is audited locally and on every host it ran on', async () => {
    const file = join(work, 'state', 'infra', 'audit.jsonl');
    const before = (await readFile(file, 'utf8')).trim().split('\n').length;
    const remoteBefore = await Promise.all(fleet.targets.map(async (t) => (await fleet.exec(t.name, 'wc -l < /var/log/infra/audit.jsonl')).stdout.trim()));
    const r = await infra(['exec', '-i', fleet.inventoryDir, '-l', 'targets', '--json', '--', 'true'], { env });
    expect(r.code, output(r)).toBe(0);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(before + 1);
    const rec = JSON.parse(lines.at(-1)!);
    expect(rec.mode).toBe('exec');
    expect(Object.keys(rec.hosts).sort()).toEqual(['target1', 'target2']);
    const remoteAfter = await Promise.all(fleet.targets.map(async (t) => (await fleet.exec(t.name, 'wc -l < /var/log/infra/audit.jsonl')).stdout.trim()));
    expect(remoteAfter.map(Number)).toEqual(remoteBefore.map((n) => Number(n) + 1));
    expect((await fleet.exec('target1', 'tail -n1 /var/log/infra/audit.jsonl')).stdout).toContain('"exec"');
  }, 60_000);

  it('after a rotation, --diff shows neither the old password (no longer a secret) nor the new one', async () => {
    const rotated = `rotated-${randomBytes(12).toString('hex')}`;
    const groupVars = join(fleet.inventoryDir, 'group_vars', 'targets.yaml');
    const before = await readFile(groupVars, 'utf8');
    const vaulted = await encryptString('canary', rotated, env.INFRA_VAULT_PASSWORD_FILE);
    await writeFile(groupVars, before.replace(/^canary: .*$/m, `canary: ${vaulted}`));
    try {
      for (const args of [['plan', '--diff'], ['plan', '--diff', '--json'], ['apply', '--check', '--diff']]) {
        const r = await infra([args[0], PLAYBOOK, '-i', fleet.inventoryDir, '--skip-tags', 'fail,slow', ...args.slice(1)], { env });
        expect(r.code, output(r)).toBe(0);
        expect(leaks(output(r)), args.join(' ')).toEqual([]); // the old value: the hosts' files still hold it
        expect(output(r)).not.toContain(rotated);
        expect(output(r)).toContain('(content hidden: sensitive)');
        if (!args.includes('--json')) expect(output(r)).toMatch(/content: sha256 [0-9a-f]{12} → sha256 [0-9a-f]{12}/);
      }
    } finally {
      await writeFile(groupVars, before);
    }
  }, 120_000);
});

describe('an undecryptable vault value stops the run before any connection', () => {
  // The host is unroutable: a connection attempt would hang, never fail fast with exit 2.
  async function inventoryWith(groupVars: string): Promise<string> {
    const dir = await mkdtemp(join(work, 'inv-'));
    await writeFile(join(dir, 'hosts.yaml'), 'hosts:\n  web1:\n    address: 192.0.2.1\n    groups: [targets]\ngroups:\n  targets: {}\n');
    await mkdir(join(dir, 'group_vars'));
    await writeFile(join(dir, 'group_vars', 'targets.yaml'), groupVars);
    return dir;
  }
  const vaultedLine = async (): Promise<string> =>
    (await readFile(join(fleet.inventoryDir, 'group_vars', 'targets.yaml'), 'utf8')).split('\n').find((l) => l.startsWith('canary:'))!;

  const cases: Array<[string, (line: string) => string, Record<string, string> | undefined, RegExp]> = [
    [
      'tampered ciphertext',
      (line) => {
        const i = line.length - 5; // inside the ciphertext+tag
        return `# x\n${line.slice(0, i)}${line[i] === 'A' ? 'B' : 'A'}${line.slice(i + 1)}\n`;
      },
      undefined,
      /cannot decrypt canary: wrong vault password .* or the value was altered or moved/,
    ],
    ['a wrong password', (line) => `# x\n${line}\n`, { wrong: '1' }, /cannot decrypt canary: wrong vault password/],
    ['a value moved to another key', (line) => `# x\n${line.replace(/^canary:/, 'other_key:')}\n`, undefined, /cannot decrypt other_key: .*moved from another key/],
  ];
  for (const [what, make, opts, message] of cases) {
    it(`${what}: exit 2, file:line, within seconds`, async () => {
      const dir = await inventoryWith(make(await vaultedLine()));
      let runEnv = env;
      if (opts?.wrong) {
        const wrong = join(work, 'wrong-pass');
        await writeFile(wrong, 'not the password\n', { mode: 0o600 });
        runEnv = { ...env, INFRA_VAULT_PASSWORD_FILE: wrong };
      }
      const r = await infra(['apply', PLAYBOOK, '-i', dir, '--skip-tags', 'fail'], { env: runEnv, timeoutMs: 30_000 });
      expect(r.code, output(r)).toBe(2);
      expect(r.stderr).toContain(`${join(dir, 'group_vars', 'targets.yaml')}:2:`);
      expect(r.stderr).toMatch(message);
      expect(leaks(output(r))).toEqual([]);
      expect(r.durationMs).toBeLessThan(10_000);
    }, 40_000);
  }
});
