/**
 * A real HostContext on one systemd container from the test image, for module integration
 * tests: the product's own session protocol and file transfer (ShellTransport: run, put with
 * temp file → validate → chown/chmod → rename, get), spoken over `docker exec -i` instead of
 * an SSH channel, so that each module is proven on a real host in isolation from the engine.
 * SSH itself is proven by the transport, engine and role tests.
 *   render / roleFile → test/fixtures/roles/modtest/{templates,files}, with the real renderer
 *   facts  → gatherFacts() over the session
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { SYSTEMD_COMMAND, SYSTEMD_RUN_FLAGS, TEST_IMAGE } from '../../../src/lab/systemd-host.js';
import { gatherFacts } from '../../../src/facts/index.js';
import { ShellTransport } from '../../../src/transport/shell-transport.js';
import { spawnChannel } from '../../../src/transport/local-channel.js';
import { sessionArgv } from '../../../src/transport/session-script.js';
import { Session } from '../../../src/transport/session.js';
import { createRenderer } from '../../../src/render/template.js';
import { hasChanges, type Check, type HostContext, type Task } from '../../../src/modules/types.js';
import type { PutOptions, RunOptions, RunResult } from '../../../src/transport/types.js';

const ROLE_DIR = fileURLToPath(new URL('../../fixtures/roles/modtest/', import.meta.url));
const LABELS = ['--label', 'infra-test=1', '--label', `infra-test.pid=${process.pid}`];

/** The session shell over `docker exec -i` (the channel an SSH exec would otherwise be), with optional env (TMPDIR). */
export class DockerExecTransport extends ShellTransport {
  constructor(
    private readonly container: string,
    private readonly env: Record<string, string> = {},
  ) {
    super('modtest');
  }
  protected async openSession(): Promise<Session> {
    const env = Object.entries(this.env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    const ch = spawnChannel(['docker', 'exec', '-i', ...env, this.container, ...sessionArgv(false, false)]);
    this.counters.connections++;
    this.counters.channels++;
    return Session.start(ch, { host: this.host, counters: this.counters });
  }
  protected async release(): Promise<void> {}
}

export interface DockerHost {
  container: string;
  /** The context modules see (checkMode false). */
  ctx: HostContext;
  /** The same host in check mode: put() throws. */
  checkCtx: HostContext;
  /** docker exec as root, for assertions (not for the code under test). */
  exec(cmd: string, stdin?: string): Promise<RunResult>;
  /** exec that must succeed: its stdout, else an error with the command, exit code and stderr. */
  sh(cmd: string): Promise<string>;
  down(): Promise<void>;
}

function execFileBuffered(args: string[], stdin: string | Buffer | undefined, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile('docker', args, { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(err);
      const killed = err && (err as { killed?: boolean }).killed;
      const code = err ? (killed ? 124 : typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8'), stdoutBytes: stdout });
    });
    child.stdin?.end(stdin ?? '');
  });
}

async function dockerOk(args: string[]): Promise<string> {
  const r = await execFileBuffered(args, undefined, 120_000);
  if (r.code !== 0) throw new Error(`docker ${args[0]} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout.trim();
}

export async function startDockerHost(opts: { name?: string } = {}): Promise<DockerHost> {
  const name = opts.name ?? `infra-modtest-${process.pid}-${Date.now().toString(36)}`;
  const container = await dockerOk([
    'run', '-d', '--name', name, '--hostname', 'modtest', ...LABELS, ...SYSTEMD_RUN_FLAGS, TEST_IMAGE, ...SYSTEMD_COMMAND,
  ]);
  const exec = (cmd: string, stdin?: string | Buffer, timeoutMs = 600_000): Promise<RunResult> =>
    execFileBuffered(['exec', '-i', container, 'sh', '-c', cmd], stdin, timeoutMs);
  let closeSession = async (): Promise<void> => {};
  const down = async (): Promise<void> => {
    await closeSession();
    await execFileBuffered(['rm', '-f', '-v', container], undefined, 60_000);
  };
  try {
    // systemd is up when is-system-running says running (or degraded: some unit failed).
    const boot = await exec('for i in $(seq 100); do s=$(systemctl is-system-running 2>/dev/null); case "$s" in running|degraded) exit 0;; esac; sleep 0.1; done; echo "$s"; exit 1');
    if (boot.code !== 0) throw new Error(`systemd did not boot: ${boot.stdout.trim()}`);
    // /proc/sys/net is writable in the test image (its own network namespace); nothing global is.
    const transport = new DockerExecTransport(container);
    closeSession = () => transport.close();
    const facts = await gatherFacts((cmd) => transport.run(cmd));
    const renderer = createRenderer({ sharedDir: fileURLToPath(new URL('../../../templates/', import.meta.url)) });
    const render = (src: string, extra?: { vars?: Record<string, unknown> }): Promise<string> =>
      renderer.renderFile(ROLE_DIR, src, { vars: { ...extra?.vars }, host: { name: 'modtest', address: '127.0.0.1', groups: [] }, facts, groups: {} });
    const base = {
      name: 'modtest',
      address: '127.0.0.1',
      groups: ['modtest'],
      vars: {},
      facts,
      run: (cmd: string, o?: RunOptions) => transport.run(cmd, o),
      get: (path: string) => transport.get(path),
      render,
      roleFile: (src: string) => readFile(`${ROLE_DIR}files/${src}`),
      hosts: () => [],
      probeConnection: async () => {
        throw new Error('probeConnection() needs a second connection: not with docker exec');
      },
    };
    const put = (path: string, bytes: string | Buffer, o?: PutOptions): Promise<void> => transport.put(path, bytes, o);
    const ctx: HostContext = { ...base, checkMode: false, put, remove: (path: string) => transport.remove(path) };
    const checkCtx: HostContext = {
      ...base,
      checkMode: true,
      put: async (path) => {
        throw new Error(`bug: a module tried to write ${path} in check mode`);
      },
      remove: async (path) => {
        throw new Error(`bug: a module tried to remove ${path} in check mode`);
      },
    };
    const sh = async (cmd: string): Promise<string> => {
      const r = await exec(cmd);
      if (r.code !== 0) throw new Error(`${cmd}: exit ${r.code}: ${r.stderr}`);
      return r.stdout;
    };
    return { container, ctx, checkCtx, exec: (cmd, stdin) => exec(cmd, stdin), sh, down };
  } catch (e) {
    await down();
    throw e;
  }
}

export interface Convergence {
  /** check() before anything was done. */
  first: Check;
  /** check() right after apply(): must have no changes. */
  after: Check;
  /** A second check-then-apply round: whether apply was called again. */
  secondApplied: boolean;
}

/**
 * What the engine does, for one task: check → apply when there are changes → check again,
 * then a second run (check → apply only if changes).
 */
export async function converge(host: HostContext, task: Task<unknown>): Promise<Convergence> {
  const m = task.module;
  const p = m.params.parse(task.params);
  const first = await m.check(host, p);
  if (hasChanges(first)) await m.apply(host, p, first);
  const after = await m.check(host, p);
  const second = await m.check(host, p);
  let secondApplied = false;
  if (hasChanges(second)) {
    await m.apply(host, p, second);
    secondApplied = true;
  }
  return { first, after, secondApplied };
}

/** check() only, for tests of decisions on a real host. */
export async function checkOnly(host: HostContext, task: Task<unknown>): Promise<Check> {
  return task.module.check(host, task.module.params.parse(task.params));
}
