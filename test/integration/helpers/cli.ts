/**
 * Runs the real CLI (bin/infra) as a child process, the way an engineer does, and parses its
 * --json event stream.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { RunEvent, HostRecap } from '../../../src/report/events.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const INFRA_BIN = join(REPO, 'bin', 'infra');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  events: RunEvent[];
  recap: HostRecap[];
  /** Sum of `changed` over every host. */
  changed: number;
  durationMs: number;
}

export function infra(args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [INFRA_BIN, ...args],
      {
        cwd: opts.cwd ?? REPO,
        env: { ...process.env, CI: '1', ...opts.env },
        timeout: opts.timeoutMs ?? 300_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        // Killed at the timeout: say so, whatever the exit code (a stopped run exits 130).
        if (err?.killed) stderr += `\n[test helper] infra killed after ${opts.timeoutMs ?? 300_000} ms (the test's timeout)\n`;
        const events: RunEvent[] = [];
        for (const line of stdout.split('\n')) {
          if (!line.startsWith('{')) continue;
          try {
            events.push(JSON.parse(line) as RunEvent);
          } catch {
            /* not an event line */
          }
        }
        const end = events.find((e) => e.type === 'run.end') as Extract<RunEvent, { type: 'run.end' }> | undefined;
        const recap = end?.recap ?? [];
        resolve({
          code,
          stdout,
          stderr,
          events,
          recap,
          changed: recap.reduce((n, r) => n + r.changed, 0),
          durationMs: Date.now() - started,
        });
      },
    );
  });
}

/** Task results of one host, in order. */
export function taskResults(r: CliResult, host?: string) {
  return r.events.filter(
    (e): e is Extract<RunEvent, { type: 'task.result' }> => e.type === 'task.result' && (!host || e.host === host),
  );
}

/** `infra vault encrypt-string --name NAME --stdin`: the `!vault ...` YAML value for `value`. */
export function vaultEncrypt(name: string, value: string, passwordFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [INFRA_BIN, 'vault', 'encrypt-string', '--name', name, '--stdin', '--vault-password-file', passwordFile], (err, stdout) =>
      err ? reject(err) : resolve(stdout.trim()),
    );
    child.stdin!.end(value);
  });
}

export interface CliWorkspace {
  /** A fresh temporary directory of the test file's own. */
  work: string;
  /** work/vault-pass (0600): the vault password of the test's inventory. */
  passwordFile: string;
  /** For infra(): that password file, and infra's state (audit, runs, locks) under work/state. */
  env: Record<string, string>;
}

/** The scratch space one test file runs the CLI in, isolated from the machine's and other files'. */
export async function cliWorkspace(name: string, vaultPassword: string): Promise<CliWorkspace> {
  const work = await mkdtemp(join(tmpdir(), `infra-${name}-`));
  const passwordFile = join(work, 'vault-pass');
  await writeFile(passwordFile, `${vaultPassword}\n`, { mode: 0o600 });
  return { work, passwordFile, env: { INFRA_VAULT_PASSWORD_FILE: passwordFile, XDG_STATE_HOME: join(work, 'state') } };
}

/** A drill's verdict lines on stderr ("drill NAME: RTO … : met", "drill NAME: RPO …, N of M … : met"), or null each. */
export function drillVerdicts(name: string, stderr: string): { rto: RegExpExecArray | null; rpo: RegExpExecArray | null } {
  return {
    rto: new RegExp(`drill ${name}: RTO (\\S+) (ms|s) \\(target 60\\.0 min\\): met`).exec(stderr),
    rpo: new RegExp(`drill ${name}: RPO (\\S+) (ms|s), (\\d+) of (\\d+) acknowledged writes lost \\(target 5\\.0 min\\): met`).exec(stderr),
  };
}
