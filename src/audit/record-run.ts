/**
 * What the engine calls once a run ends: the record goes to the controller's file and to
 * every host that changed (not in check mode). Failures are returned, never thrown: a full
 * disk on one host must not turn a finished run into a crash.
 */
import { buildRecord, type RunSummary, type AuditRecord } from './record.js';
import { appendLocal, defaultAuditFile } from './local.js';
import { appendRemote } from './remote.js';
import { redact } from '../secrets/secret.js';

type Run = (cmd: string, opts: { stdin: string }) => Promise<{ code: number; stderr: string }>;

export interface RecordedRun {
  local: { ok: true; record: AuditRecord; file: string } | { ok: false; file: string; error: string };
  /** Per host that keeps a copy. */
  remote: Record<string, { ok: boolean; error?: string }>;
}

export async function recordRun(
  s: RunSummary,
  opts: {
    runOn: (host: string) => Run | undefined;
    /** Hosts that keep a copy (default: those that changed); never in check mode. */
    hosts?: string[];
    localFile?: string;
    remotePath?: string;
  },
): Promise<RecordedRun> {
  const draft = buildRecord(s);
  const file = opts.localFile ?? defaultAuditFile();
  let local: RecordedRun['local'];
  try {
    local = { ok: true, record: await appendLocal(draft, file), file };
  } catch (e) {
    local = { ok: false, file, error: redact(e instanceof Error ? e.message : String(e)) };
  }
  const remote: RecordedRun['remote'] = {};
  if (s.mode !== 'check') {
    const changed = Object.entries(draft.hosts).filter(([, h]) => h.changed > 0).map(([host]) => host);
    await Promise.all(
      (opts.hosts ?? changed).map(async (host) => {
        const run = opts.runOn(host);
        if (!run) return void (remote[host] = { ok: false, error: 'no open session to the host' });
        try {
          remote[host] = await appendRemote(run, draft, opts.remotePath);
        } catch (e) {
          remote[host] = { ok: false, error: redact(e instanceof Error ? e.message : String(e)) };
        }
      }),
    );
  }
  return { local, remote };
}
