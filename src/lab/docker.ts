/**
 * The docker CLI, called with an argument array (never through a shell).
 * The lab uses the CLI rather than a client library so that it needs no devDependency.
 */
import { execFile } from 'node:child_process';

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `docker ...args`; resolves with the exit code instead of throwing on failure. */
export function dockerRun(args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'docker',
      args,
      { maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 120_000 },
      (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(err);
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
  });
}

/** Runs `docker ...args` and returns stdout; throws with docker's own message on failure. */
export async function docker(args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await dockerRun(args, opts);
  if (r.code !== 0) {
    throw new Error(`docker ${args.slice(0, 2).join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}
