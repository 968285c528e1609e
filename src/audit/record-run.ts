/**
 * What the engine calls once a run ends: the record is signed and appended to the controller's
 * file, then the same line goes to every host it touched (record.ts `recipients`, or the
 * caller's list: exec keeps a copy on every host the command started on). Failures
 * are returned, never thrown: a full disk on one host must not turn a finished run into a crash.
 */
import { buildRecord, recipients, type RunSummary } from './record.js';
import { appendLocal, defaultAuditFile, type Appended } from './local.js';
import { appendRemote } from './remote.js';
import { defaultAuditKeyFile, loadSigningKey } from './key.js';
import { redact } from '../secrets/secret.js';

type Run = (cmd: string, opts: { stdin: string }) => Promise<{ code: number; stderr: string }>;

export interface RecordedRun {
  local: ({ ok: true } & Appended) | { ok: false; error: string };
  file: string;
  /** Per host that should keep a copy. */
  remote: Record<string, { ok: boolean; error?: string }>;
}

export async function recordRun(
  s: RunSummary,
  opts: {
    runOn: (host: string) => Run | undefined;
    /** Hosts that keep a copy (default: record.ts `recipients`); never in check mode. */
    hosts?: string[];
    localFile?: string;
    remotePath?: string;
    keyFile?: string;
  },
): Promise<RecordedRun> {
  const draft = buildRecord(s);
  const file = opts.localFile ?? defaultAuditFile();
  let local: RecordedRun['local'];
  try {
    local = { ok: true, ...(await appendLocal(draft, loadSigningKey(opts.keyFile ?? defaultAuditKeyFile()), file)) };
  } catch (e) {
    local = { ok: false, error: redact(e instanceof Error ? e.message : String(e)) };
  }
  const remote: RecordedRun['remote'] = {};
  await Promise.all(
    (draft.mode === 'check' ? [] : (opts.hosts ?? recipients(draft))).map(async (host) => {
      const run = opts.runOn(host);
      if (!local.ok) return void (remote[host] = { ok: false, error: 'no signed record to send (see the controller error)' });
      if (!run) return void (remote[host] = { ok: false, error: 'no open session to the host' });
      try {
        remote[host] = await appendRemote(run, local.line, opts.remotePath);
      } catch (e) {
        remote[host] = { ok: false, error: redact(e instanceof Error ? e.message : String(e)) };
      }
    }),
  );
  return { local, file, remote };
}
