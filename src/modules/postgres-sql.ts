/**
 * What the postgres.* modules share: psql as the postgres OS user over the session (SQL on
 * stdin, never in argv), SQL quoting, the postgresql.conf format, and SCRAM-SHA-256
 * verifiers computed and compared on the controller, so a password never reaches the server,
 * a log or an output line: only its verifier does, and that is treated as a secret too.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { Secret } from '../secrets/secret.js';
import { sh } from '../shell/quote.js';
import { commandFailed } from './run-checked.js';
import type { HostContext } from './types.js';

export const portSchema = z.number().int().min(1).max(65535).default(5432);

/** Role and database names: what PostgreSQL allows unquoted, plus "-" and "." (quoted on use). */
export const pgName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z_][A-Za-z0-9_.$-]*$/, 'a PostgreSQL name: letters, digits, _ . $ - (starting with a letter or _), at most 63 characters');

/** "quoted" identifier. */
export function ident(name: string): string {
  if (name.includes('\0')) throw new Error('an SQL identifier cannot contain NUL');
  return `"${name.replace(/"/g, '""')}"`;
}

/** 'quoted' literal (standard_conforming_strings is on by default since 9.1). */
export function lit(value: string): string {
  if (value.includes('\0')) throw new Error('an SQL literal cannot contain NUL');
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * Statements that keep what follows out of the server log: a password verifier in an
 * ALTER ROLE must not be logged by log_statement, nor echoed when a statement fails.
 */
export const QUIET_SESSION = "SET log_statement = 'none';\nSET log_min_error_statement = 'panic';\n";

export interface PsqlOptions {
  port: number;
  database?: string;
  /** Run the whole input as one transaction (psql -1). */
  single?: boolean;
}

export const psqlCommand = (o: PsqlOptions): string =>
  sh`cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 ${o.single ? '-1' : []} -p ${o.port} -d ${o.database ?? 'postgres'}`;

export type PsqlResult = { ok: true; stdout: string } | { ok: false; down: boolean; message: string };

/**
 * Runs SQL (on stdin). `down` = no server to talk to (psql missing, no such OS user, or the
 * connection failed: psql exit 2), as opposed to an SQL error (exit 3).
 */
export async function psql(host: HostContext, sql: string, o: PsqlOptions): Promise<PsqlResult> {
  const r = await host.run(psqlCommand(o), { stdin: sql });
  if (r.code === 0) return { ok: true, stdout: r.stdout };
  const down = r.code === 127 || r.code === 2 || (r.code === 1 && /does not exist|not found|No such file/i.test(r.stderr));
  return { ok: false, down, message: commandFailed(`psql on port ${o.port}${o.database ? `, database ${o.database}` : ''}`, r).message };
}

/** psql that must succeed. */
export async function psqlChecked(host: HostContext, sql: string, o: PsqlOptions): Promise<string> {
  const r = await psql(host, sql, o);
  if (!r.ok) throw new Error(r.message);
  return r.stdout;
}

/**
 * A read for check(): its result, or undefined when the server is not there yet and this is a
 * plan (an earlier task installs or starts it). In a real run a missing server is an error.
 */
export async function readForCheck<T>(host: HostContext, sql: string, o: PsqlOptions, parse: (stdout: string) => T): Promise<T | undefined> {
  const r = await psql(host, sql, o);
  if (r.ok) return parse(r.stdout);
  if (r.down && host.checkMode) return undefined;
  throw new Error(r.message);
}

export const NOT_RUNNING_YET = 'server not running yet (expected from an earlier task)';

/** JSON printed by a query (one value, psql -A -t). */
export function parseJson<T>(stdout: string): T {
  const text = stdout.trim();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`unexpected psql output: ${text.slice(0, 200)}`);
  }
}

// ---------------------------------------------------------------- postgresql.conf format

/** `name = value` lines of a postgresql.conf-style file → lower-cased name → value (quotes removed). */
export function parseConf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = stripComment(raw).trim();
    if (!line) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*(.*)$/.exec(line);
    if (!m) continue;
    out.set(m[1].toLowerCase(), unquoteValue(m[2].trim()));
  }
  return out;
}

/** A '#' outside single quotes starts a comment. */
function stripComment(line: string): string {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === "'") quoted = !quoted;
    else if (line[i] === '#' && !quoted) return line.slice(0, i);
  }
  return line;
}

function unquoteValue(v: string): string {
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1).replace(/''/g, "'").replace(/\\'/g, "'");
  return v;
}

/** Names whose value differs between two parsed files (added, removed or changed), sorted. */
export function changedSettings(before: Map<string, string>, after: Map<string, string>): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((n) => before.get(n) !== after.get(n)).sort();
}

// ---------------------------------------------------------------- SCRAM-SHA-256 (RFC 5802 / 7677)

const SCRAM_RE = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;
export const SCRAM_ITERATIONS = 4096;

/**
 * SASLprep as PostgreSQL applies it (RFC 4013): non-ASCII spaces → space, "mapped to nothing"
 * characters removed, NFKC. A password with prohibited characters is used as raw bytes, as
 * the server does.
 */
export function saslprep(password: string): string {
  if (/^[\x20-\x7e]*$/.test(password)) return password;
  const mapped = password
    .replace(/[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g, ' ')
    .replace(/[\u00ad\u034f\u1806\u180b-\u180d\u200c\u200d\u2060\ufe00-\ufe0f\ufeff]/g, '')
    .normalize('NFKC');
  // Control characters and private-use / non-characters are prohibited output.
  if (/[\u0000-\u001f\u007f-\u009f\ue000-\uf8ff\ufdd0-\ufdef\ufffe\uffff]/.test(mapped)) return password;
  return mapped;
}

function scramKeys(password: string, salt: Buffer, iterations: number): { storedKey: Buffer; serverKey: Buffer } {
  const salted = pbkdf2Sync(Buffer.from(saslprep(password), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

/** The verifier PostgreSQL stores for a password (what `\password` sends): a Secret too. */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): Secret {
  const { storedKey, serverKey } = scramKeys(password, salt, iterations);
  return new Secret(`SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`, 'scram verifier');
}

export type StoredPassword = 'none' | 'md5' | 'scram' | 'other';

export function storedPasswordKind(verifier: string | null): StoredPassword {
  if (!verifier) return 'none';
  if (SCRAM_RE.test(verifier)) return 'scram';
  if (/^md5[0-9a-f]{32}$/.test(verifier)) return 'md5';
  return 'other';
}

/** Does a stored SCRAM verifier belong to this password? (recomputed with its own salt and iterations) */
export function scramMatches(verifier: string, password: string): boolean {
  const m = SCRAM_RE.exec(verifier);
  if (!m) return false;
  const { storedKey, serverKey } = scramKeys(password, Buffer.from(m[2], 'base64'), Number(m[1]));
  const want = Buffer.concat([storedKey, serverKey]);
  const have = Buffer.concat([Buffer.from(m[3], 'base64'), Buffer.from(m[4], 'base64')]);
  return have.length === want.length && timingSafeEqual(have, want);
}
