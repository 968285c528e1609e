/** The controller's audit file: $XDG_STATE_HOME/infra/audit.jsonl (~/.local/state/...), 0600. */
import { mkdirSync, openSync, closeSync, fstatSync, readSync, writeSync, fchmodSync, rmdirSync, statSync, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { sealRecord, headOfLine } from './chain.js';
import type { SigningKey } from './key.js';
import type { AuditDraft, AuditRecord } from './record.js';

export function defaultAuditFile(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(state, 'infra', 'audit.jsonl');
}

export interface Appended {
  record: AuditRecord;
  /** The line as written: hosts keep the same bytes. */
  line: string;
}

/**
 * Appends one record, signed and chained to the file's last line. Serialised between local
 * runs by a lock dir. After a last line that is not a signed record (records from before
 * signing) a new chain starts (seq 1): verifyChain accepts unsigned records only before it.
 */
export async function appendLocal(draft: AuditDraft, key: SigningKey, file: string = defaultAuditFile()): Promise<Appended> {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const release = await lock(`${file}.lock`);
  try {
    const last = lastLine(file);
    const { line, record } = sealRecord(draft, (last !== undefined && headOfLine(last)) || null, key);
    const fd = openSync(file, 'a', 0o600);
    try {
      fchmodSync(fd, 0o600);
      writeSync(fd, line + '\n');
    } finally {
      closeSync(fd);
    }
    return { record, line };
  } finally {
    release();
  }
}

/** Lines of an audit file ([] when it does not exist yet). */
export function readAuditLines(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n');
}

/** The last non-empty line, read backwards in chunks (the file only grows); undefined if none. */
function lastLine(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const fd = openSync(file, 'r');
  try {
    return lastLineOf(fd);
  } finally {
    closeSync(fd);
  }
}

function lastLineOf(fd: number): string | undefined {
  const size = fstatSync(fd).size;
  let end = size;
  let tail = Buffer.alloc(0);
  while (end > 0) {
    const start = Math.max(0, end - 65536);
    const chunk = Buffer.alloc(end - start);
    readSync(fd, chunk, 0, chunk.length, start);
    tail = Buffer.concat([chunk, tail]);
    end = start;
    const text = tail.toString('utf8').replace(/\n+$/, '');
    const nl = text.lastIndexOf('\n');
    if (nl >= 0 || end === 0) return text.slice(nl + 1) || undefined;
  }
  return undefined;
}

/** mkdir is atomic: the directory is the lock. A lock older than 30 s is a crashed run's. */
async function lock(path: string): Promise<() => void> {
  for (let attempt = 0; ; attempt++) {
    try {
      mkdirSync(path, { mode: 0o700 });
      return () => rmdirSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(path).mtimeMs > 30_000) rmdirSync(path);
      } catch {
        // released meanwhile
      }
      if (attempt > 200) throw new Error(`audit file lock ${path} is held by another run`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
