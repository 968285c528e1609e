/**
 * A HostContext whose run() answers from a script (in order) and records every command, so
 * module decisions can be tested without a host. put() records writes; in check mode it throws.
 */
import { createHash } from 'node:crypto';
import type { Facts } from '../../../src/facts/types.js';
import { hasChanges, type Changes, type Check, type HostContext } from '../../../src/modules/types.js';
import type { PutOptions, RunResult } from '../../../src/transport/types.js';

export interface Scripted {
  stdout?: string;
  stderr?: string;
  code?: number;
  /** Bytes the session dropped from the head of stdout (output over the cap). */
  droppedStdout?: number;
}

export const facts: Facts = {
  hostname: 'web1',
  fqdn: 'web1.example.com',
  os: { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)', family: 'debian' },
  kernel: '6.1.0-18-amd64',
  arch: 'x86_64',
  cpus: 2,
  memoryMb: 3931,
  container: 'none',
  uid: 0,
  initSystem: 'systemd',
};

export interface FakeHost extends HostContext {
  commands: string[];
  puts: { path: string; bytes: string; opts?: PutOptions }[];
  removed: string[];
}

export function fakeHost(answers: Scripted[], opts: { checkMode?: boolean; templates?: Record<string, string>; files?: Record<string, string> } = {}): FakeHost {
  const queue = [...answers];
  const commands: string[] = [];
  const puts: FakeHost['puts'] = [];
  const removed: string[] = [];
  return {
    name: 'web1',
    address: '10.0.0.5',
    groups: ['web'],
    vars: { greeting: 'hi' },
    facts,
    checkMode: opts.checkMode ?? false,
    commands,
    puts,
    removed,
    async run(cmd: string): Promise<RunResult> {
      commands.push(cmd);
      const a = queue.shift();
      if (!a) throw new Error(`unexpected command (no scripted answer left):\n${cmd}`);
      const stdout = a.stdout ?? '';
      const r: RunResult = { code: a.code ?? 0, stdout, stderr: a.stderr ?? '', stdoutBytes: Buffer.from(stdout) };
      if (a.droppedStdout) r.dropped = { stdout: a.droppedStdout, stderr: 0 };
      return r;
    },
    async put(path, bytes, o) {
      if (opts.checkMode) throw new Error('put in check mode');
      puts.push({ path, bytes: bytes.toString(), opts: o });
    },
    async remove(path) {
      if (opts.checkMode) throw new Error('remove in check mode');
      removed.push(path);
    },
    async get() {
      throw new Error('get() is not used by modules');
    },
    async render(src, data) {
      const t = opts.templates?.[src];
      if (t === undefined) throw new Error(`no template ${src}`);
      return t.replace('{{vars.greeting}}', String((data?.vars as Record<string, unknown> | undefined)?.greeting ?? 'hi'));
    },
    async roleFile(src) {
      const f = opts.files?.[src];
      if (f === undefined) throw new Error(`no file ${src}`);
      return Buffer.from(f);
    },
    hosts: () => [],
    async probeConnection() {
      throw new Error('probeConnection() is not used by these modules');
    },
  };
}

/** The check, asserted to have changes (what apply() takes). */
export function withChanges<D>(c: Check<D>): Changes<D> {
  if (!hasChanges(c)) throw new Error(`expected changes, got none (${c.reason})`);
  return c;
}

/** The probe output for a regular file (see src/modules/file-state.ts). */
export function fileProbe(f: { mode?: string; owner?: string; group?: string; uid?: number; gid?: number; content: string; fetched?: boolean }): string {
  const size = Buffer.byteLength(f.content);
  const sha = createHash('sha256').update(f.content).digest('hex');
  const head = `file ${f.mode ?? '644'} ${f.owner ?? 'root'} ${f.group ?? 'root'} ${f.uid ?? 0} ${f.gid ?? 0} ${size}`;
  const content = f.fetched === false ? '' : `content:${Buffer.from(f.content).toString('base64')}\n`;
  return `${head}\n${sha}\n${content}`;
}
