/** Before the lab starts anything: a docker engine that answers, and the test image. */
import { spawn } from 'node:child_process';
import { relative } from 'node:path';
import { UserError } from '../errors.js';
import { dockerRun } from './docker.js';

const FIX = 'bash test/image/ensure-docker.sh (as root)';

export async function ensureDockerAnswers(): Promise<void> {
  let r;
  try {
    r = await dockerRun(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 20_000 });
  } catch {
    throw new UserError('docker is not installed (no `docker` command on PATH)', {
      hint: `install and start it with: ${FIX}`,
    });
  }
  if (r.code !== 0) {
    throw new UserError(`docker is installed but its daemon does not answer: ${firstLine(r.stderr)}`, {
      hint: `start it with: ${FIX}`,
    });
  }
}

/** Builds the image with the build script when it is missing (the script caches by hash). */
export async function ensureImage(image: string, buildScript: string, log: (line: string) => void): Promise<void> {
  if ((await dockerRun(['image', 'inspect', '--format', '{{.Id}}', image])).code === 0) return;
  log(`lab: image ${image} is missing; building it (about 2 minutes)`);
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn('bash', [buildScript], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (c) => resolve(c ?? 1));
  });
  if (code !== 0) {
    throw new UserError(`building the test image failed (exit ${code})`, {
      hint: `run it yourself to see why: bash ${relative(process.cwd(), buildScript) || buildScript} (it needs debootstrap: ${FIX})`,
    });
  }
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}
