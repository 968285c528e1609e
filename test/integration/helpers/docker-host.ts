/**
 * A real HostContext over `docker exec` into one systemd container from the test image, for
 * module integration tests that must not wait for the SSH transport and the engine:
 *   run()  → docker exec -i <ctr> sh -c <cmd> (stdin piped, argv array, no host shell)
 *   put()  → temp file in the destination dir → validate → chown/chmod → mv, through run()
 *   get()  → base64 through run()
 *   render / roleFile → test/fixtures/roles/modtest/{templates,files}
 *   facts  → gatherFacts() over run()
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { SYSTEMD_COMMAND, SYSTEMD_RUN_FLAGS, TEST_IMAGE } from '../../../src/lab/systemd-host.js';
import { gatherFacts } from '../../../src/facts/index.js';
import { quote } from '../../../src/shell/quote.js';
import type { Check, HostContext, Task } from '../../../src/modules/types.js';
import type { PutOptions, RunOptions, RunResult } from '../../../src/transport/types.js';

const ROLE_DIR = fileURLToPath(new URL('../../fixtures/roles/modtest/', import.meta.url));
const LABELS = ['--label', 'infra-test=1', '--label', `infra-test.pid=${process.pid}`];

export interface DockerHost {
  container: string;
  /** The context modules see (checkMode false). */
  ctx: HostContext;
  /** The same host in check mode: put() throws. */
  checkCtx: HostContext;
  /** docker exec as root, for assertions (not for the code under test). */
  exec(cmd: string, stdin?: string): Promise<RunResult>;
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

/** The put() protocol of the transports, as one shell script reading the bytes on stdin. */
export function putScript(path: string, o: PutOptions = {}): string {
  const lines = [
    'set -e',
    `p=${quote(path)}`,
    't=$(mktemp "$(dirname -- "$p")/.infra-put.XXXXXX")',
    `trap 'rm -f "$t"' EXIT`,
    'cat > "$t"',
  ];
  // validate is a command template from the role author: %s becomes the temp file, passed as $1.
  if (o.validate) lines.push(`sh -c ${quote(o.validate.replaceAll('%s', '"$1"'))} validate "$t"`);
  if (o.owner) lines.push(`chown ${quote(o.owner)} "$t"`);
  if (o.group) lines.push(`chgrp ${quote(o.group)} "$t"`);
  lines.push(`chmod ${quote(o.mode ?? '0644')} "$t"`);
  lines.push('mv -f "$t" "$p"', 'trap - EXIT');
  return lines.join('\n');
}

export async function startDockerHost(opts: { name?: string; writableSysctl?: boolean } = {}): Promise<DockerHost> {
  const name = opts.name ?? `infra-modtest-${process.pid}-${Date.now().toString(36)}`;
  const container = await dockerOk([
    'run', '-d', '--name', name, '--hostname', 'modtest', ...LABELS, ...SYSTEMD_RUN_FLAGS, TEST_IMAGE, ...SYSTEMD_COMMAND,
  ]);
  const exec = (cmd: string, stdin?: string | Buffer, timeoutMs = 600_000): Promise<RunResult> =>
    execFileBuffered(['exec', '-i', container, 'sh', '-c', cmd], stdin, timeoutMs);
  const down = async (): Promise<void> => {
    await execFileBuffered(['rm', '-f', '-v', container], undefined, 60_000);
  };
  try {
    // systemd is up when is-system-running says running (or degraded: some unit failed).
    const boot = await exec('for i in $(seq 100); do s=$(systemctl is-system-running 2>/dev/null); case "$s" in running|degraded) exit 0;; esac; sleep 0.1; done; echo "$s"; exit 1');
    if (boot.code !== 0) throw new Error(`systemd did not boot: ${boot.stdout.trim()}`);
    // docker mounts /proc/sys read-only; the network sysctls are per-container (namespaced).
    if (opts.writableSysctl) await exec('mount -o remount,rw /proc/sys');
    const facts = await gatherFacts((cmd) => exec(cmd));
    const render = async (src: string, data?: Record<string, unknown>): Promise<string> => {
      const text = await readFile(`${ROLE_DIR}templates/${src}`, 'utf8');
      const tpl = Handlebars.compile(text, { noEscape: true, strict: true });
      return tpl(data ?? { vars: {}, host: { name: 'modtest', address: '127.0.0.1', groups: [] }, facts });
    };
    const base = {
      name: 'modtest',
      address: '127.0.0.1',
      groups: ['modtest'],
      vars: {},
      facts,
      run: (cmd: string, o?: RunOptions) => exec(cmd, o?.stdin, o?.timeoutMs),
      async get(path: string): Promise<Buffer | null> {
        const r = await exec(`p=${quote(path)}; [ -f "$p" ] || exit 3; base64 -w0 < "$p"`);
        if (r.code === 3) return null;
        if (r.code !== 0) throw new Error(`get ${path}: ${r.stderr.trim()}`);
        return Buffer.from(r.stdout.trim(), 'base64');
      },
      render,
      roleFile: (src: string) => readFile(`${ROLE_DIR}files/${src}`),
      hosts: () => [],
    };
    const put = async (path: string, bytes: string | Buffer, o?: PutOptions): Promise<void> => {
      const r = await exec(putScript(path, o), bytes);
      if (r.code !== 0) throw new Error(`put ${path} failed (exit ${r.code}): ${r.stderr.trim()}`);
    };
    const ctx: HostContext = { ...base, checkMode: false, put };
    const checkCtx: HostContext = {
      ...base,
      checkMode: true,
      put: async (path) => {
        throw new Error(`bug: a module tried to write ${path} in check mode`);
      },
    };
    return { container, ctx, checkCtx, exec: (cmd, stdin) => exec(cmd, stdin), down };
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
  if (first.changes.length > 0) await m.apply(host, p, first);
  const after = await m.check(host, p);
  const second = await m.check(host, p);
  let secondApplied = false;
  if (second.changes.length > 0) {
    await m.apply(host, p, second);
    secondApplied = true;
  }
  return { first, after, secondApplied };
}

/** check() only, for tests of decisions on a real host. */
export async function checkOnly(host: HostContext, task: Task<unknown>): Promise<Check> {
  return task.module.check(host, task.module.params.parse(task.params));
}
