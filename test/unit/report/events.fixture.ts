/** A small run as the executor would emit it: 3 hosts, one unreachable, a secret in a diff. */
import type { HostRecap, RunEvent } from '../../../src/report/events.js';
import { Secret } from '../../../src/secrets/secret.js';

export const SECRET_VALUE = 'report-secret-Q7w2';
export const TLS_KEY = '-----BEGIN KEY-----\nAAAAreportKEY1\nBBBBreportKEY2\n-----END KEY-----';
new Secret(SECRET_VALUE);
new Secret(TLS_KEY);

export const recap: HostRecap[] = [
  { host: 'db1', ok: 1, changed: 1, failed: 0, skipped: 0, unreachable: false, durationMs: 1500 },
  { host: 'web1', ok: 1, changed: 0, failed: 1, skipped: 1, unreachable: false, durationMs: 800, error: 'task failed' },
  { host: 'web22', ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: true, error: 'connect ECONNREFUSED 10.0.0.3:22', durationMs: 12 },
];

export function runEvents(): RunEvent[] {
  return [
    { type: 'run.start', runId: 'r1', command: 'infra apply -i lab', mode: 'apply', inventory: 'lab', hosts: ['db1', 'web1', 'web22'], at: '2025-01-01T00:00:00.000Z' },
    { type: 'play.start', play: 'site', hosts: ['db1', 'web1', 'web22'] },
    { type: 'host.connecting', host: 'db1' },
    { type: 'host.connecting', host: 'web1' },
    { type: 'host.connecting', host: 'web22' },
    { type: 'host.connected', host: 'db1', ms: 40 },
    { type: 'host.unreachable', host: 'web22', error: 'connect ECONNREFUSED 10.0.0.3:22' },
    { type: 'host.connected', host: 'web1', ms: 45 },
    { type: 'task.start', host: 'db1', task: 'apt.packages postgresql-15', module: 'apt.packages' },
    { type: 'task.start', host: 'web1', task: 'apt.packages nginx', module: 'apt.packages' },
    { type: 'task.result', host: 'web1', task: 'apt.packages nginx', module: 'apt.packages', status: 'ok', changes: [], reason: 'already present at 1.22.1-9', ms: 20 },
    { type: 'task.result', host: 'db1', task: 'apt.packages postgresql-15', module: 'apt.packages', status: 'ok', changes: [], reason: 'already present', ms: 25 },
    { type: 'task.start', host: 'db1', task: 'files.template /etc/app.env', module: 'files.template' },
    {
      type: 'task.result',
      host: 'db1',
      task: 'files.template /etc/app.env',
      module: 'files.template',
      status: 'changed',
      changes: [{ what: 'content' }, { what: 'mode', from: '0644', to: '0600' }],
      diff: [
        { kind: 'file', path: '/etc/app.env', before: 'user=app\npassword=old\n', after: `user=app\npassword=${SECRET_VALUE}\nkey=${TLS_KEY}\n` },
        { kind: 'file', path: '/etc/ssl/app.key', before: null, after: TLS_KEY.replace('KEY1', 'XYZ9'), sensitive: true },
      ],
      ms: 30,
    },
    { type: 'task.result', host: 'web1', task: 'files.line /etc/motd', module: 'files.line', status: 'skipped', changes: [], reason: 'tag not selected', ms: 0 },
    {
      type: 'task.result',
      host: 'web1',
      task: 'command.run make',
      module: 'command.run',
      status: 'failed',
      changes: [],
      error: `exit 2: make: *** no rule\nsee log (password ${SECRET_VALUE})`,
      ms: 10,
    },
    { type: 'play.end', play: 'site' },
    { type: 'run.end', runId: 'r1', recap, durationMs: 2345, interrupted: false, exitCode: 1 },
  ];
}

/** A writable stream that keeps what was written. */
export function sink(opts: { tty?: boolean } = {}) {
  const chunks: string[] = [];
  const stream = {
    isTTY: opts.tty ?? false,
    columns: 120,
    rows: 40,
    write(chunk: string | Uint8Array, ...rest: unknown[]) {
      chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    },
    on() {
      return stream;
    },
    once() {
      return stream;
    },
    off() {
      return stream;
    },
    removeListener() {
      return stream;
    },
    emit() {
      return false;
    },
  };
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
}
