/**
 * Runs the real CLI (bin/infra) as a child process for the commands that need no network.
 * CI=1 keeps the output plain (no live view, no colours).
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const FIXTURES = 'test/fixtures/cli';

export interface CliOutput {
  code: number;
  stdout: string;
  stderr: string;
}

export function infra(args: string[], opts: { cwd?: string } = {}): Promise<CliOutput> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO, 'bin', 'infra'), ...args],
      { cwd: opts.cwd ?? REPO, env: { ...process.env, CI: '1', NO_COLOR: '1', FORCE_COLOR: '0' }, timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
