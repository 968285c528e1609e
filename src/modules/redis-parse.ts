/**
 * Pure helpers behind the redis.* modules: redis.conf / sentinel.conf directives (read the way
 * Redis reads them, edited the way CONFIG REWRITE edits them), ACL rules compared by meaning,
 * INFO and Sentinel replies. No host access here: every decision is table-tested.
 */

/** Splits a config line into arguments as Redis does (sdssplitargs): "…" with escapes, '…'. Null when a quote is unbalanced. */
export function splitArgs(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  while (true) {
    while (i < n && /\s/.test(line[i])) i++;
    if (i >= n) return out;
    let cur = '';
    if (line[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = line[i];
        if (c === '\\' && line[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
          cur += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
          i += 4;
        } else if (c === '\\' && i + 1 < n) {
          const e = line[i + 1];
          cur += e === 'n' ? '\n' : e === 'r' ? '\r' : e === 't' ? '\t' : e === 'b' ? '\b' : e === 'a' ? '\x07' : e;
          i += 2;
        } else if (c === '"') {
          closed = true;
          i++;
          break;
        } else {
          cur += c;
          i++;
        }
      }
      // A closing quote must be followed by a space or the end of the line.
      if (!closed || (i < n && !/\s/.test(line[i]))) return null;
    } else if (line[i] === "'") {
      i++;
      let closed = false;
      while (i < n) {
        if (line[i] === '\\' && line[i + 1] === "'") {
          cur += "'";
          i += 2;
        } else if (line[i] === "'") {
          closed = true;
          i++;
          break;
        } else cur += line[i++];
      }
      if (!closed || (i < n && !/\s/.test(line[i]))) return null;
    } else {
      while (i < n && !/\s/.test(line[i])) cur += line[i++];
    }
    out.push(cur);
  }
}

/** A value as a config file argument: bare when safe, else double-quoted with escapes (as Redis writes it). */
export function quoteArg(value: string): string {
  if (value !== '' && /^[A-Za-z0-9_@%+=:,./~*&|{}#-]+$/.test(value) && !value.startsWith('#')) return value;
  let out = '"';
  for (const ch of value) {
    const code = ch.charCodeAt(0);
    if (ch === '\\' || ch === '"') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

export interface Directive {
  /** Lower-case name: Redis matches directives case-insensitively. */
  key: string;
  args: string[];
  /** 0-based line number in the file. */
  line: number;
}

/** The directives of a config file, in order (comments and blank lines skipped). */
export function parseConfig(text: string): Directive[] {
  const out: Directive[] = [];
  text.split('\n').forEach((raw, line) => {
    const t = raw.trim();
    if (t === '' || t.startsWith('#')) return;
    const args = splitArgs(t);
    if (!args || args.length === 0) return;
    out.push({ key: args[0].toLowerCase(), args: args.slice(1), line });
  });
  return out;
}

/** Directives whose occurrences add up instead of replacing each other. */
const ADDITIVE = new Set(['save', 'client-output-buffer-limit']);

const MEMORY_UNITS: Record<string, number> = { k: 1000, kb: 1024, m: 1000 ** 2, mb: 1024 ** 2, g: 1000 ** 3, gb: 1024 ** 3 };

/** One argument the way Redis understands it: "512mb" and "536870912" are the same memory size. */
export function normalizeArg(arg: string): string {
  const m = /^(\d+)(k|kb|m|mb|g|gb)$/i.exec(arg);
  if (m) return String(Number(m[1]) * MEMORY_UNITS[m[2].toLowerCase()]);
  return arg;
}

/** A value (file syntax, or what CONFIG GET answers) reduced to compare by meaning. */
export function normalizeValue(value: string): string {
  const args = splitArgs(value) ?? [value];
  return args.map(normalizeArg).join(' ');
}

/** The value a file gives `key` once Redis has read it: the last occurrence (or all, for save). Undefined if unset. */
export function effectiveValue(directives: Directive[], key: string): string | undefined {
  const hits = directives.filter((d) => d.key === key);
  if (hits.length === 0) return undefined;
  const used = ADDITIVE.has(key) ? hits : [hits[hits.length - 1]];
  return used.flatMap((d) => d.args.map(normalizeArg)).join(' ');
}

/**
 * Sets directives in a config file the way CONFIG REWRITE does: the first line of a key is
 * replaced in place, its other lines dropped, missing keys appended; `absent` keys lose every
 * line. Everything else
 * (comments, replicaof, Sentinel's state) stays byte for byte. Values are in file syntax.
 */
export function setDirectives(text: string, settings: Record<string, string>, absent: string[] = []): string {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const byKey = new Map<string, number[]>();
  for (const d of parseConfig(text)) byKey.set(d.key, [...(byKey.get(d.key) ?? []), d.line]);
  const drop = new Set<number>(absent.flatMap((k) => byKey.get(k) ?? []));
  const append: string[] = [];
  for (const [key, value] of Object.entries(settings)) {
    const line = `${key} ${value}`;
    const at = byKey.get(key.toLowerCase());
    if (!at) {
      append.push(line);
      continue;
    }
    lines[at[0]] = line;
    for (const i of at.slice(1)) drop.add(i);
  }
  const kept = lines.filter((_, i) => !drop.has(i));
  if (append.length) kept.push(...(kept.length && kept[kept.length - 1] !== '' ? [''] : []), '# managed by infra', ...append);
  return kept.length ? `${kept.join('\n')}\n` : '';
}

// ---------------------------------------------------------------- ACL

export interface AclSpec {
  name: string;
  enabled: boolean;
  /** sha256 hex of each accepted password (never the password). */
  passwordHashes: string[];
  /** Key patterns: "~*", "~app:*", "%R~cache:*". */
  keys: string[];
  /** Pub/Sub channel patterns: "&*", "&events:*". */
  channels: string[];
  /** Command rules in order: "-@all", "+@read", "+client|setname". */
  commands: string[];
}

/** One aclfile line, in the form ACL LIST prints it. */
export function aclLine(u: AclSpec): string {
  const parts = [`user ${u.name}`, u.enabled ? 'on' : 'off', ...u.passwordHashes.map((h) => `#${h}`), ...u.keys];
  parts.push(...(u.channels.length ? u.channels : ['resetchannels']));
  parts.push(...u.commands);
  return parts.join(' ');
}

const ALIASES: Record<string, string> = { allkeys: '~*', allchannels: '&*', allcommands: '+@all', nocommands: '-@all' };

/**
 * A user's rules reduced to compare by meaning: ACL LIST prints command rules in an order
 * that changes from one server start to the next, so adjacent rules of the same sign (which
 * commute: two additions, or two removals) are sorted; everything else keeps its order.
 */
export function canonicalAcl(line: string): { name: string; canon: string } | null {
  const t = line.trim().split(/\s+/);
  if (t[0] !== 'user' || !t[1]) return null;
  const flags: string[] = [];
  const passwords: string[] = [];
  const keys: string[] = [];
  const channels: string[] = [];
  const commands: string[] = [];
  for (const raw of t.slice(2)) {
    const tok = ALIASES[raw] ?? raw;
    if (tok === 'on' || tok === 'off' || tok === 'nopass') flags.push(tok);
    else if (tok.startsWith('#')) passwords.push(tok);
    else if (/^(~|%R~|%W~|%RW~)/.test(tok)) keys.push(tok);
    else if (tok.startsWith('&')) channels.push(tok);
    else if (tok === 'resetchannels' || tok === 'resetkeys' || tok === 'sanitize-payload') continue;
    else if (tok.startsWith('+') || tok.startsWith('-')) commands.push(tok);
    else flags.push(tok);
  }
  // A new user starts with no command: rules that do not open with ±@all mean "-@all ...", as ACL LIST prints them.
  if (commands[0] !== '+@all' && commands[0] !== '-@all') commands.unshift('-@all');
  const sortedRuns: string[] = [];
  let run: string[] = [];
  for (const c of commands) {
    if (run.length && run[0][0] !== c[0]) {
      sortedRuns.push(...run.sort());
      run = [];
    }
    run.push(c);
  }
  sortedRuns.push(...run.sort());
  const canon = [flags.sort().join(' '), passwords.sort().join(' '), keys.sort().join(' '), channels.sort().join(' '), sortedRuns.join(' ')].join(' | ');
  return { name: t[1], canon };
}

/** Which users differ between two ACL listings (wanted vs live), by name, without showing password hashes. */
export function diffAcl(want: string[], live: string[]): { what: string; from?: string; to?: string }[] {
  const index = (lines: string[]) => new Map(lines.map(canonicalAcl).filter((x): x is { name: string; canon: string } => !!x).map((x) => [x.name, x.canon]));
  const w = index(want);
  const l = index(live);
  const out: { what: string; from?: string; to?: string }[] = [];
  for (const [name, canon] of w) {
    const have = l.get(name);
    if (have === undefined) out.push({ what: `user ${name}`, from: 'absent', to: 'present' });
    else if (have !== canon) {
      // canon: flags | passwords | keys | channels | commands; the rules are all but the passwords.
      const parts = (c: string) => c.split(' | ');
      const rules = (c: string) => parts(c).filter((_, i) => i !== 1).filter(Boolean).join(' ');
      if (parts(canon)[1] !== parts(have)[1]) out.push({ what: `user ${name}: password`, from: '(differs)', to: '(from the vault)' });
      if (rules(canon) !== rules(have)) out.push({ what: `user ${name}: rules`, from: rules(have), to: rules(canon) });
    }
  }
  for (const name of l.keys()) if (!w.has(name)) out.push({ what: `user ${name}`, from: 'present', to: 'absent' });
  return out;
}

// ---------------------------------------------------------------- replies

/** `INFO` text → field map ("role" → "master"). */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/** `redis-cli --json CONFIG GET ...`: an object in RESP3, a flat [key, value, ...] list in RESP2 (when HELLO 3 is refused). */
export function parseConfigGet(json: string): Record<string, string> {
  const v = JSON.parse(json || '{}') as unknown;
  if (Array.isArray(v)) {
    const out: Record<string, string> = {};
    for (let i = 0; i + 1 < v.length; i += 2) out[String(v[i])] = String(v[i + 1]);
    return out;
  }
  return v as Record<string, string>;
}

/** A flat field/value reply (SENTINEL MASTER in raw mode: one item per line) → map. */
export function parsePairs(text: string): Map<string, string> {
  const lines = text.split('\n').filter((l, i, a) => !(i === a.length - 1 && l === ''));
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < lines.length; i += 2) out.set(lines[i], lines[i + 1]);
  return out;
}

export interface Addr {
  ip: string;
  port: number;
}

export const addrKey = (a: Addr): string => `${a.ip}:${a.port}`;

/**
 * The master the Sentinels agree on: the address most of the answering Sentinels give.
 * Null when none answers (the cluster was never formed); an error when they split evenly.
 */
export function agreedMaster(answers: (Addr | null)[]): { master: Addr; votes: number; answered: number } | null {
  const known = answers.filter((a): a is Addr => a !== null);
  if (known.length === 0) return null;
  const votes = new Map<string, { addr: Addr; n: number }>();
  for (const a of known) {
    const k = addrKey(a);
    votes.set(k, { addr: a, n: (votes.get(k)?.n ?? 0) + 1 });
  }
  const ranked = [...votes.values()].sort((a, b) => b.n - a.n);
  if (ranked.length > 1 && ranked[0].n === ranked[1].n) {
    throw new Error(`the Sentinels disagree on the master (${ranked.map((r) => `${addrKey(r.addr)}: ${r.n}`).join(', ')}): a failover may be in progress; re-run in a minute`);
  }
  return { master: ranked[0].addr, votes: ranked[0].n, answered: known.length };
}

/** `SENTINEL get-master-addr-by-name` in raw mode: "ip\nport\n", or empty / an error. */
export function parseMasterAddr(text: string): Addr | null {
  const [ip, port] = text.trim().split('\n').map((s) => s.trim());
  if (!ip || !port || !/^\d+$/.test(port)) return null;
  return { ip, port: Number(port) };
}
