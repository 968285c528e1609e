/**
 * redis.*: Redis and Sentinel state, changed the way Redis itself changes it, never by
 * overwriting what Redis writes at run time.
 *
 *  - redis.config: the directives we own in a file Redis also rewrites (CONFIG REWRITE after a
 *    failover, Sentinel's state flushes). Compared by meaning, edited line by line, applied
 *    to the running server with CONFIG SET; a restart only for what Redis cannot change live.
 *  - redis.acl: the aclfile (password sha256 only) and ACL LOAD; users compared with ACL LIST.
 *  - redis.replication: follow the master the Sentinels name (never the inventory's over theirs).
 *  - redis.sentinel: monitor one master; a bootstrap file once, then SENTINEL SET only.
 *
 * Every redis-cli call authenticates through REDISCLI_AUTH read from stdin: no password in a
 * command line, an argv or an error. Check is read-only; apply acts on what check found.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { Secret, registerSecretValue } from '../secrets/secret.js';
import { quote, sh } from '../shell/quote.js';
import { parseProbe, probeCommand, type FileState } from './file-state.js';
import { applyFile, attrChanges, attrsShape, planFile, type DesiredFile } from './file-plan.js';
import { pathSchema, renderTemplate } from './whole-file.js';
import { runChecked, splitSections } from './run-checked.js';
import {
  aclLine,
  addrKey,
  agreedMaster,
  diffAcl,
  effectiveValue,
  normalizeArg,
  normalizeValue,
  parseConfig,
  parseConfigGet,
  parseInfo,
  parseMasterAddr,
  parsePairs,
  quoteArg,
  setDirectives,
  type Addr,
} from './redis-parse.js';
import { defineModule, nonEmpty, unchanged, type Change, type Check, type Diff, type HostContext } from './types.js';

// ---------------------------------------------------------------- talking to Redis

const port = z.number().int().min(1).max(65535);
const addrSchema = z.object({ ip: z.string().min(1), port }).strict();
const memberSchema = z.object({ name: z.string().min(1), ip: z.string().min(1), port }).strict();

/** Client-side TLS (redis-cli --tls): the CA that signed the servers, and our own cert if they ask for one. */
const tlsSchema = z.object({ caFile: pathSchema, certFile: pathSchema.optional(), keyFile: pathSchema.optional() }).strict();
export type RedisTls = z.infer<typeof tlsSchema>;

const endpointSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(6379),
    user: z.string().regex(/^[A-Za-z0-9_.-]+$/).optional(),
    password: z.instanceof(Secret).optional(),
    tls: tlsSchema.optional(),
  })
  .strict();
export type RedisEndpoint = z.infer<typeof endpointSchema>;

const unitName = z.string().regex(/^[A-Za-z0-9@_.:-]+$/, 'a systemd unit name');

const MARK = '@@infra-redis@@';

const tlsArgs = (tls?: RedisTls): string =>
  tls ? ` --tls --cacert ${quote(tls.caFile)}${tls.certFile ? ` --cert ${quote(tls.certFile)}` : ''}${tls.keyFile ? ` --key ${quote(tls.keyFile)}` : ''}` : '';

/**
 * One script, one round trip: `redis_ ARGS` asks the server (as its admin user, the password
 * read from stdin's first line), `sentinel_ HOST PORT ARGS` asks a Sentinel. Each question's
 * stdout, stderr and exit code come back as sections.
 */
class RedisScript {
  #lines = ['t=$(mktemp) || exit 97', `trap 'rm -f "$t"' EXIT`];
  #stdin = '';
  constructor(server?: RedisEndpoint, sentinelTls?: RedisTls) {
    if (server) {
      const auth = server.user && server.password;
      if (auth) {
        this.#lines.push('IFS= read -r pw || :');
        this.#stdin = `${server.password!.reveal()}\n`;
      }
      const env = auth ? 'REDISCLI_AUTH="$pw" ' : '';
      const user = auth ? ` --user ${quote(server.user!)}` : '';
      // A TLS client waits forever on a plaintext server (TLS being switched on): a plaintext
      // PING first tells, and then nothing is asked over TLS (exit 125, "speaks plaintext").
      const guard = server.tls ? 'if [ -n "$plaintext" ]; then echo "the server speaks plaintext there, not TLS" >&2; return 125; fi; ' : '';
      this.#lines.push(`redis_() { ${guard}${env}timeout 15 redis-cli -e${user} -h ${quote(server.host)} -p ${server.port}${tlsArgs(server.tls)} "$@"; }`);
      if (server.tls) this.#lines.push(sh`case "$(timeout 3 redis-cli -h ${server.host} -p ${server.port} PING 2>&1)" in *PONG*|*NOAUTH*|*ERR*) plaintext=1 ;; esac`);
    }
    this.#lines.push(`sentinel_() { h=$1; p=$2; shift 2; timeout 3 redis-cli -e -h "$h" -p "$p"${tlsArgs(sentinelTls)} "$@"; }`);
  }
  /** `cmd` is shell text calling redis_ / sentinel_ (quote its arguments). */
  ask(name: string, cmd: string): this {
    this.#lines.push(`echo ${MARK}${name}`, `${cmd} 2>"$t"; rc=$?`, `echo ${MARK}${name}.err`, `cat "$t"`, `echo ${MARK}${name}.rc`, 'echo $rc');
    return this;
  }
  /** Raw shell text printing its own output as a section (a file probe). */
  section(name: string, cmd: string): this {
    this.#lines.push(`echo ${MARK}${name}`, cmd);
    return this;
  }
  /** Bytes after the password line: read by the one `redis-cli -x` of the script. */
  payload(value: string): this {
    this.#stdin += value;
    return this;
  }
  async run(host: HostContext, timeoutMs = 60_000): Promise<Answers> {
    const r = await host.run(this.#lines.join('\n'), { stdin: this.#stdin || undefined, timeoutMs });
    return new Answers(splitSections(r.stdout, MARK));
  }
}

interface Answer {
  out: string;
  err: string;
  rc: number;
}

class Answers {
  constructor(readonly sections: Map<string, string>) {}
  get(name: string): Answer {
    const rc = this.sections.get(`${name}.rc`);
    return { out: this.sections.get(name) ?? '', err: (this.sections.get(`${name}.err`) ?? '').trim(), rc: rc === undefined ? -1 : Number(rc.trim()) };
  }
  text(name: string): string {
    return this.sections.get(name) ?? '';
  }
}

/** Runs one command on the server, or throws with what Redis said. */
async function redisCommand(host: HostContext, server: RedisEndpoint, what: string, args: string[], payload?: string): Promise<string> {
  const s = new RedisScript(server);
  if (payload !== undefined) s.payload(payload);
  const a = (await s.ask('cmd', `redis_${payload !== undefined ? ' -x' : ''} ${args.map(quote).join(' ')}`).run(host)).get('cmd');
  if (a.rc !== 0) throw new Error(`${what}: ${explainFailure(a)}`);
  return a.out;
}

/** The part of redis-cli's stderr that says what went wrong, with a hint for the usual causes. */
function explainFailure(a: Answer): string {
  const err = a.err.split('\n').filter((l) => !l.startsWith('AUTH failed')).join('\n').trim() || a.err || `exit ${a.rc}`;
  if (/NOAUTH|WRONGPASS|NOPERM/.test(a.err)) {
    return `${err} — the server does not accept the admin user's password from the vault (rotated? then load the new ACL once with the old one: redis-cli --user <admin> --askpass ACL LOAD)`;
  }
  return err;
}

/**
 * Nothing answers as we ask: down, listening elsewhere (another port; TLS where we speak
 * plaintext: reset; plaintext where we speak TLS: exit 125), or redis-cli not installed yet
 * (a plan before the packages).
 */
const notAnswering = (a: Answer): boolean =>
  a.rc !== 0 && (a.rc === 125 || /Could not connect|Connection refused|reset by peer|closed the connection|TLS|SSL|not found|No such file/i.test(a.err));

const sameAddr = (a: Addr, b: Addr): boolean => a.ip === b.ip && a.port === b.port;

const sha256Hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/** Asks every Sentinel who the master of `name` is; answers that do not come are null. */
function askSentinels(s: RedisScript, sentinels: { ip: string; port: number }[], name: string): RedisScript {
  sentinels.forEach((x, i) => s.ask(`sentinel${i}`, sh`sentinel_ ${x.ip} ${x.port} SENTINEL get-master-addr-by-name ${name}`));
  return s;
}

function sentinelAnswers(a: Answers, count: number): (Addr | null)[] {
  return Array.from({ length: count }, (_, i) => {
    const x = a.get(`sentinel${i}`);
    return x.rc === 0 ? parseMasterAddr(x.out) : null;
  });
}

// ---------------------------------------------------------------- redis.config

/** Directives that belong to Redis or Sentinel at run time: never ours to set. */
const RUNTIME_OWNED = new Set(['replicaof', 'slaveof', 'sentinel', 'user', 'include']);

const configParams = z
  .object({
    path: pathSchema,
    /** Directive → value in file syntax ("512mb", "10.0.0.5 127.0.0.1"). A Secret is written quoted and never shown. */
    settings: z
      .record(z.union([z.string(), z.instanceof(Secret)]))
      .refine((s) => Object.keys(s).every((k) => /^[a-z][a-z0-9-]*$/.test(k)), 'directive names are lower-case words')
      .refine((s) => Object.keys(s).every((k) => !RUNTIME_OWNED.has(k)), `${[...RUNTIME_OWNED].join(', ')} belong to Redis/Sentinel at run time`),
    /** Directives that must not be in the file at all (`user` lines next to an aclfile stop Redis from starting). */
    absent: z.array(z.string().regex(/^[a-z][a-z0-9-]*$/)).default([]),
    ...attrsShape,
    /** The unit to restart when a setting cannot change live (or, without `live`, around an edit). */
    service: unitName,
    /**
     * The running server (as its admin): changes go live with CONFIG SET, and a restart only
     * when Redis refuses one live (aclfile). Absent (Sentinel): stop, edit, start — Sentinel
     * rewrites its file at any moment, so it must not run while we edit.
     */
    live: endpointSchema.optional(),
  })
  .strict();
export type ConfigParams = z.infer<typeof configParams>;

interface ConfigData {
  writeFile: boolean;
  /** Keys whose running value differs. */
  liveKeys: string[];
  running: boolean;
  /** The service runs but not where the file says (port, TLS, bind changed while it was down... or first run with TLS). */
  restart: boolean;
}

const fileSyntax = (v: string | Secret): string => (v instanceof Secret ? quoteArg(v.reveal()) : v);

/**
 * The decision, pure: file content, and the running server — its CONFIG GET answers, or, when
 * the unit is active but does not answer where we ask (a new port, TLS), undefined.
 */
export function decideConfig(p: ConfigParams, state: FileState, live: Record<string, string> | undefined, active = live !== undefined): Check<ConfigData> {
  if (state.kind !== 'absent' && state.kind !== 'file') throw new Error(`${p.path} is a ${state.kind}, not a regular file`);
  const directives = parseConfig(state.content?.toString('utf8') ?? '');
  const changes: Change[] = [];
  const diff: Diff[] = [];
  const liveKeys: string[] = [];
  let writeFile = state.kind === 'absent';
  for (const [key, value] of Object.entries(p.settings)) {
    if (value instanceof Secret) {
      // Compared as written (no normalising), and never shown.
      const hits = directives.filter((d) => d.key === key);
      if (hits.length === 0 || hits[hits.length - 1].args.join(' ') !== value.reveal()) {
        writeFile = true;
        changes.push({ what: `${p.path}: ${key}`, from: hits.length ? '(differs)' : '(unset)', to: '(from the vault)' });
      }
      if (live && key in live && live[key] !== value.reveal()) {
        liveKeys.push(key);
        changes.push({ what: `${key} (running server)`, from: '(differs)', to: '(from the vault)' });
      }
      continue;
    }
    const want = normalizeValue(value);
    const have = effectiveValue(directives, key);
    if (have !== want) {
      writeFile = true;
      changes.push({ what: `${p.path}: ${key}`, from: have ?? '(unset)', to: value });
      diff.push({ kind: 'value', name: `${p.path}: ${key}`, before: have ?? null, after: value });
    }
    if (live && key in live) {
      const running = live[key].trim().split(/\s+/).filter(Boolean).map(normalizeArg).join(' ');
      if (running !== want) {
        liveKeys.push(key);
        changes.push({ what: `${key} (running server)`, from: running, to: value });
      }
    }
  }
  for (const key of p.absent) {
    const n = directives.filter((d) => d.key === key).length;
    if (n > 0) {
      writeFile = true;
      changes.push({ what: `${p.path}: ${key}`, from: `${n} line(s)`, to: 'none' });
    }
  }
  const attrs = state.kind === 'file' ? attrChanges(state, p) : [];
  changes.push(...attrs.map((c) => ({ ...c, what: `${p.path}: ${c.what}` })));
  const restart = !!p.live && active && live === undefined;
  if (restart) changes.push({ what: `${p.service}`, from: `running, but not answering at ${p.live!.host}:${p.live!.port}${p.live!.tls ? ' (TLS)' : ''}`, to: 'restarted with this file' });
  const data: ConfigData = { writeFile: writeFile || attrs.length > 0, liveKeys, running: live !== undefined, restart };
  if (!nonEmpty(changes)) {
    const n = Object.keys(p.settings).length;
    return unchanged(`${p.path}: ${n} settings as wanted${live ? ', and on the running server' : ''}`);
  }
  return { changes, diff, data };
}

export const config = defineModule<ConfigParams, z.input<typeof configParams>, ConfigData>({
  name: 'redis.config',
  params: configParams,
  describe: (p) => `${p.path} (${Object.keys(p.settings).length} settings)`,
  async check(host, p) {
    const s = new RedisScript(p.live).section('file', probeCommand(p.path, 'always')).ask('active', sh`systemctl is-active --quiet -- ${p.service}`);
    if (p.live) s.ask('live', sh`redis_ --json CONFIG GET ${Object.keys(p.settings)}`);
    const a = await s.run(host);
    const state = parseProbe(a.text('file'));
    let live: Record<string, string> | undefined;
    if (p.live) {
      const l = a.get('live');
      if (l.rc === 0) live = parseConfigGet(l.out);
      // Not answering (down, elsewhere, or in a plan not installed yet): the file is what it starts with.
      else if (!notAnswering(l) && !host.checkMode) throw new Error(`CONFIG GET on ${p.live.host}:${p.live.port}: ${explainFailure(l)}`);
    }
    return decideConfig(p, state, live, a.get('active').rc === 0);
  },
  async apply(host, p, c) {
    const d = c.data;
    if (!p.live) {
      // Sentinel: stopped while we edit, so that none of its state flushes is lost.
      const active = (await host.run(sh`systemctl is-active --quiet -- ${p.service}`)).code === 0;
      if (active) await runChecked(host, sh`systemctl stop -- ${p.service}`, `stop ${p.service}`);
      await writeEdited(host, p);
      if (active) await runChecked(host, sh`systemctl start -- ${p.service}`, `start ${p.service}`);
      return;
    }
    if (d.writeFile) await writeEdited(host, p);
    if (d.restart) {
      await runChecked(host, sh`systemctl restart -- ${p.service}`, `restart ${p.service} (it did not answer where the file says)`);
      return;
    }
    if (!d.running || d.liveKeys.length === 0) return;
    const plain = d.liveKeys.filter((k) => !(p.settings[k] instanceof Secret));
    const secret = d.liveKeys.filter((k) => p.settings[k] instanceof Secret);
    try {
      // One CONFIG SET is atomic: all of them or none.
      if (plain.length) await redisCommand(host, p.live, 'CONFIG SET', ['CONFIG', 'SET', ...plain.flatMap((k) => [k, liveValue(p.settings[k] as string)])]);
      for (const k of secret) await redisCommand(host, p.live, `CONFIG SET ${k}`, ['CONFIG', 'SET', k], (p.settings[k] as Secret).reveal());
    } catch (e) {
      if (!/immutable config|protected config/.test((e as Error).message)) throw e;
      // aclfile, dir...: read at start only. The file already holds every value.
      await runChecked(host, sh`systemctl restart -- ${p.service}`, `restart ${p.service} (a setting Redis reads at start only changed)`);
    }
  },
});

/** CONFIG SET takes the value unquoted: "10.0.0.5 127.0.0.1", "3600 1 300 100". */
function liveValue(fileValue: string): string {
  return (parseConfig(`x ${fileValue}`)[0]?.args ?? []).join(' ');
}

/** Reads the file again (Redis may have rewritten it since check), sets our directives, writes it atomically. */
async function writeEdited(host: HostContext, p: ConfigParams): Promise<void> {
  const r = await runChecked(host, probeCommand(p.path, 'always'), `read ${p.path}`);
  const state = parseProbe(r.stdout);
  const text = state.content?.toString('utf8') ?? '';
  const settings = Object.fromEntries(Object.entries(p.settings).map(([k, v]) => [k, fileSyntax(v)]));
  const want: DesiredFile = { path: p.path, content: Buffer.from(setDirectives(text, settings, p.absent), 'utf8'), mode: p.mode, owner: p.owner, group: p.group, sensitive: true };
  await applyFile(host, want, state, planFile(want, state));
}

// ---------------------------------------------------------------- redis.acl

const aclUser = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
    enabled: z.boolean().default(true),
    /** Accepted passwords (two during a rotation). Only their sha256 reaches the host. */
    passwords: z.array(z.instanceof(Secret)).default([]),
    /** Key patterns: "~*", "~app:*", "%R~cache:*". */
    keys: z.array(z.string().regex(/^(~|%R~|%W~|%RW~)\S+$/, 'a key pattern such as ~app:*')).default([]),
    /** Channel patterns: "&*". Empty: none. */
    channels: z.array(z.string().regex(/^&\S+$/, 'a channel pattern such as &events:*')).default([]),
    /** Command rules in order: "-@all", "+@read", "+client|setname". */
    commands: z.array(z.string().regex(/^[+-][@A-Za-z0-9|_-]+$/, 'a command rule such as +@read or -flushall')).default([]),
  })
  .strict();

const aclParams = z
  .object({
    path: pathSchema,
    users: z
      .array(aclUser)
      .min(1)
      .refine((u) => new Set(u.map((x) => x.name)).size === u.length, 'user names must be unique')
      // Redis makes a `default` user missing from the file an open one (nopass, +@all).
      .refine((u) => u.some((x) => x.name === 'default'), 'the aclfile must define the default user'),
    ...attrsShape,
    /** The running server, as the admin user: ACL LIST / ACL LOAD. */
    server: endpointSchema,
  })
  .strict();
export type AclParams = z.infer<typeof aclParams>;

/** The aclfile's text: one `user` line per user, passwords as sha256 (no comments: the format has none). */
export function aclFileText(users: AclParams['users']): string {
  const lines = users.map((u) => {
    const passwordHashes = u.passwords.map((s) => sha256Hex(s.reveal()));
    // A hash shows nothing of the password but still identifies it: kept out of all output too.
    for (const h of passwordHashes) registerSecretValue(h);
    return aclLine({ name: u.name, enabled: u.enabled, passwordHashes, keys: u.keys, channels: u.channels, commands: u.commands });
  });
  return `${lines.join('\n')}\n`;
}

interface AclData {
  want: DesiredFile;
  state: FileState;
  load: boolean;
}

export const acl = defineModule<AclParams, z.input<typeof aclParams>, AclData>({
  name: 'redis.acl',
  params: aclParams,
  describe: (p) => `${p.path} (${p.users.map((u) => u.name).join(', ')})`,
  async check(host, p) {
    const content = aclFileText(p.users);
    const want: DesiredFile = { path: p.path, content: Buffer.from(content), mode: p.mode, owner: p.owner, group: p.group, sensitive: true };
    const a = await new RedisScript(p.server)
      .section('file', probeCommand(p.path, { unlessSha: createHash('sha256').update(content).digest('hex') }))
      .ask('aclfile', 'redis_ --json CONFIG GET aclfile')
      .ask('list', '[ "$rc" -eq 0 ] && redis_ --json ACL LIST')
      .run(host);
    const state = parseProbe(a.text('file'));
    const plan = planFile(want, state);
    const changes: Change[] = plan.changes.map((c) => ({ ...c, what: `${p.path}: ${c.what}` }));
    const aclfile = a.get('aclfile');
    let liveNote: string;
    let load = false;
    if (aclfile.rc !== 0) {
      if (!notAnswering(aclfile) && !host.checkMode) throw new Error(`CONFIG GET aclfile: ${explainFailure(aclfile)}`);
      liveNote = `the server does not answer at ${p.server.host}:${p.server.port}: it loads the file when it (re)starts`;
    } else {
      const loaded = parseConfigGet(aclfile.out).aclfile;
      if (loaded !== p.path) {
        // Bootstrap: the server is not using an aclfile yet; redis.config sets it (a restart).
        liveNote = `the running server does not read ${p.path} yet (aclfile ${loaded ? `is ${loaded}` : 'unset'}): it loads it once aclfile is set`;
      } else {
        const list = a.get('list');
        if (list.rc !== 0) throw new Error(`ACL LIST: ${explainFailure(list)}`);
        const live = JSON.parse(list.out || '[]') as string[];
        const users = diffAcl(content.trim().split('\n'), live);
        changes.push(...users.map((c) => ({ ...c, what: `running server: ${c.what}` })));
        load = users.length > 0 || plan.write;
        liveNote = 'the running server has the same users';
      }
    }
    const data: AclData = { want, state, load };
    if (!nonEmpty(changes)) return unchanged(`${p.path} is up to date; ${liveNote}`);
    return { changes, diff: plan.diff ? [plan.diff] : undefined, data };
  },
  async apply(host, p, c) {
    const d = c.data;
    await applyFile(host, d.want, d.state, planFile(d.want, d.state));
    // The file is the whole truth: ACL LOAD replaces every user (Redis keeps the old set if the file is bad).
    if (d.load) await redisCommand(host, p.server, 'ACL LOAD', ['ACL', 'LOAD']);
  },
});

// ---------------------------------------------------------------- redis.replication

const replicationParams = z
  .object({
    /** This host's server, as the admin user. */
    server: endpointSchema,
    /** This server as the others reach it. */
    self: addrSchema,
    /** The name the Sentinels monitor the master by. */
    masterName: z.string().regex(/^[A-Za-z0-9_.-]+$/),
    /** The master the inventory names: used only while no Sentinel knows the cluster. */
    inventoryMaster: memberSchema,
    /** Every Redis host, to name addresses in messages. */
    members: z.array(memberSchema).default([]),
    sentinels: z.array(memberSchema),
    sentinelTls: tlsSchema.optional(),
    /** Make a replica of a master that holds keys while no Sentinel knows the cluster (its keys are lost). */
    discardData: z.boolean().default(false),
  })
  .strict();
export type ReplicationParams = z.infer<typeof replicationParams>;

export interface ReplicationState {
  /** INFO replication fields. */
  info: Map<string, string>;
  keys: number;
  /** One answer per Sentinel (null: no answer / unknown master). */
  sentinels: (Addr | null)[];
}

/** "10.0.0.42:6379 (redis2)". */
const describeAddr = (a: Addr, p: ReplicationParams): string => {
  const named = [p.inventoryMaster, ...p.members].find((m) => sameAddr(m, a));
  const labels = [named?.name, sameAddr(a, p.self) ? 'this host' : undefined].filter(Boolean);
  return labels.length ? `${addrKey(a)} (${labels.join(', ')})` : addrKey(a);
};

/** The decision, pure: who the master is now, and what this host must do about it. */
export function decideReplication(p: ReplicationParams, s: ReplicationState): Check<Addr | undefined> {
  const agreed = agreedMaster(s.sentinels);
  const inventory: Addr = { ip: p.inventoryMaster.ip, port: p.inventoryMaster.port };
  const current = agreed?.master ?? inventory;
  const role = s.info.get('role');
  const following: Addr | undefined = role === 'slave' ? { ip: s.info.get('master_host') ?? '', port: Number(s.info.get('master_port')) } : undefined;
  const warning =
    agreed && !sameAddr(current, inventory)
      ? `Sentinel names ${describeAddr(current, p)} master of "${p.masterName}", the inventory names ${p.inventoryMaster.name}: ` +
        `following Sentinel (a failover happened), not forcing ${p.inventoryMaster.name} back. ` +
        `Update the inventory's redis_master group, or move the master back: redis-cli -p 26379 SENTINEL FAILOVER ${p.masterName}`
      : undefined;
  const who = agreed ? `Sentinel (${agreed.votes} of ${agreed.answered} answering) names ${describeAddr(current, p)}` : `no Sentinel knows "${p.masterName}" yet: the inventory names ${describeAddr(current, p)}`;

  if (sameAddr(current, p.self)) {
    if (role === 'master') return unchanged(`master of "${p.masterName}" (${who})`, { warning });
    if (agreed) throw new Error(`${who} as master, but this host runs as a replica of ${following ? addrKey(following) : '?'}: a failover is in progress; re-run in a minute`);
    throw new Error(
      `the inventory makes this host the master, but it runs as a replica of ${following ? addrKey(following) : '?'} and no Sentinel answers. ` +
        `infra does not promote it (that could split the cluster): start the Sentinels, or promote it yourself: redis-cli --user <admin> --askpass REPLICAOF NO ONE`,
    );
  }
  if (following && sameAddr(following, current)) {
    return unchanged(`replica of ${describeAddr(current, p)}, link ${s.info.get('master_link_status') ?? '?'} (${who})`, { warning });
  }
  if (!agreed) {
    // Nobody to ask: act only on a fresh node, never against a topology that already exists.
    if (following) throw new Error(`no Sentinel answers and this host replicates ${addrKey(following)}, not the inventory's master ${describeAddr(inventory, p)}: not changing it. Start the Sentinels and re-run.`);
    const replicas = Number(s.info.get('connected_slaves') ?? 0);
    if (replicas > 0) throw new Error(`no Sentinel answers and this host is a master with ${replicas} replica(s): not demoting it to a replica of ${describeAddr(inventory, p)}. Start the Sentinels and re-run.`);
    if (s.keys > 0 && !p.discardData) {
      throw new Error(
        `this host is a master holding ${s.keys} keys; making it a replica of ${describeAddr(inventory, p)} would drop them. ` +
          `Copy what matters, then set redis_replica_discard_data: true for this host (or run REPLICAOF yourself).`,
      );
    }
  }
  return {
    changes: [{ what: 'replicaof', from: following ? `replica of ${addrKey(following)}` : (role ?? 'unknown'), to: `replica of ${describeAddr(current, p)}` }],
    reason: who,
    warning,
    data: current,
  };
}

/** D: the master to follow; undefined only in a plan's prediction (apply never gets one). */
export const replication = defineModule<ReplicationParams, z.input<typeof replicationParams>, Addr | undefined>({
  name: 'redis.replication',
  params: replicationParams,
  describe: (p) => `"${p.masterName}" on ${addrKey(p.self)}`,
  async check(host, p) {
    const s = new RedisScript(p.server, p.sentinelTls).ask('info', 'redis_ INFO replication').ask('dbsize', 'redis_ DBSIZE');
    const a = await askSentinels(s, p.sentinels, p.masterName).run(host);
    const info = a.get('info');
    if (info.rc !== 0) {
      // In a plan the server may not be installed or configured yet.
      if (host.checkMode) return { changes: [{ what: 'replication', from: 'server not answering yet', to: `follow the master Sentinel names (inventory: ${p.inventoryMaster.name})` }] };
      throw new Error(`INFO replication: ${explainFailure(info)}`);
    }
    return decideReplication(p, { info: parseInfo(info.out), keys: Number(a.get('dbsize').out.trim()) || 0, sentinels: sentinelAnswers(a, p.sentinels.length) });
  },
  async apply(host, p, c) {
    const m = c.data;
    if (!m) throw new Error('bug: redis.replication applied a check-mode prediction');
    await redisCommand(host, p.server, 'REPLICAOF', ['REPLICAOF', m.ip, String(m.port)]);
    // Persisted the way Sentinel persists it after a failover.
    await redisCommand(host, p.server, 'CONFIG REWRITE', ['CONFIG', 'REWRITE']);
  },
});

// ---------------------------------------------------------------- redis.sentinel

/** The line that says our bootstrap file is in place (Sentinel keeps comments when it rewrites). */
export const SENTINEL_MARKER = '# infra: bootstrap written; Sentinel owns this file';

const sentinelParams = z
  .object({
    path: pathSchema,
    ...attrsShape,
    service: unitName,
    /** The local Sentinel: loopback, or the private address when TLS needs a name its certificate carries. */
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(26379),
    tls: tlsSchema.optional(),
    masterName: z.string().regex(/^[A-Za-z0-9_.-]+$/),
    quorum: z.number().int().min(1),
    downAfterMs: z.number().int().min(100),
    failoverTimeoutMs: z.number().int().min(1000),
    parallelSyncs: z.number().int().min(1),
    /** Sentinel's ACL user on the Redis servers. */
    authUser: z.string().regex(/^[A-Za-z0-9_.-]+$/),
    authPass: z.instanceof(Secret),
    /** The master the inventory names: monitored at bootstrap only if no other Sentinel knows better. */
    inventoryMaster: memberSchema,
    /** The other Sentinels, asked for the current master at bootstrap. */
    peers: z.array(memberSchema),
    /** The role's template for the first sentinel.conf; rendered with these vars plus this module's settings and `monitor` (ip, port). */
    bootstrap: z.object({ template: z.string().min(1), vars: z.record(z.unknown()) }).strict(),
  })
  .strict();
export type SentinelParams = z.infer<typeof sentinelParams>;

/** What Sentinel calls our settings in SENTINEL MASTER / SENTINEL SET. */
const sentinelSettings = (p: SentinelParams): Record<string, string> => ({
  quorum: String(p.quorum),
  'down-after-milliseconds': String(p.downAfterMs),
  'failover-timeout': String(p.failoverTimeoutMs),
  'parallel-syncs': String(p.parallelSyncs),
});

type SentinelData =
  | { kind: 'bootstrap'; monitor: Addr }
  | { kind: 'monitor'; monitor: Addr }
  | { kind: 'set'; settings: Record<string, string>; authPass: boolean };

export interface SentinelState {
  file: FileState;
  /** SENTINEL MASTER fields; null when this Sentinel does not monitor the name; undefined when it does not answer. */
  master: Map<string, string> | null | undefined;
  peers: (Addr | null)[];
}

/** The decision, pure. */
export function decideSentinel(p: SentinelParams, s: SentinelState, checkMode: boolean): Check<SentinelData | undefined> {
  const text = s.file.content?.toString('utf8') ?? '';
  const monitorAt = (): { addr: Addr; why: string } => {
    const agreed = agreedMaster(s.peers);
    if (agreed) return { addr: agreed.master, why: `the master ${agreed.votes} other Sentinel(s) name` };
    return { addr: { ip: p.inventoryMaster.ip, port: p.inventoryMaster.port }, why: `the inventory's master ${p.inventoryMaster.name}` };
  };
  if (s.file.kind !== 'file' || !text.split('\n').includes(SENTINEL_MARKER)) {
    const m = monitorAt();
    return {
      changes: [{ what: `${p.path}: bootstrap`, from: s.file.kind === 'file' ? "the package's example" : 'absent', to: `monitor "${p.masterName}" at ${addrKey(m.addr)} (${m.why}); Sentinel owns the file afterwards` }],
      data: { kind: 'bootstrap', monitor: m.addr } satisfies SentinelData,
    };
  }
  if (s.master === undefined) {
    if (checkMode) return { changes: [{ what: 'sentinel settings', from: 'Sentinel not answering', to: 'checked once it runs' }] };
    throw new Error(`the Sentinel on port ${p.port} does not answer (systemctl status ${p.service})`);
  }
  if (s.master === null) {
    const m = monitorAt();
    return {
      changes: [{ what: `monitor "${p.masterName}"`, from: 'not monitored', to: `${addrKey(m.addr)} (${m.why})` }],
      data: { kind: 'monitor', monitor: m.addr } satisfies SentinelData,
    };
  }
  const changes: Change[] = [];
  const settings: Record<string, string> = {};
  for (const [k, v] of Object.entries(sentinelSettings(p))) {
    const have = s.master.get(k);
    if (have !== v) {
      settings[k] = v;
      changes.push({ what: k, from: have ?? '(unset)', to: v });
    }
  }
  // auth-user / auth-pass are not in SENTINEL MASTER's answer: Sentinel's own file has them.
  const directives = parseConfig(text).filter((d) => d.key === 'sentinel' && d.args[1] === p.masterName);
  const authUser = directives.filter((d) => d.args[0] === 'auth-user').pop()?.args[2];
  const authPass = directives.filter((d) => d.args[0] === 'auth-pass').pop()?.args[2];
  if (authUser !== p.authUser) {
    settings['auth-user'] = p.authUser;
    changes.push({ what: 'auth-user', from: authUser ?? '(unset)', to: p.authUser });
  }
  const passDiffers = authPass !== p.authPass.reveal();
  if (passDiffers) changes.push({ what: 'auth-pass', from: authPass === undefined ? '(unset)' : '(differs)', to: '(from the vault)' });
  const current = `${s.master.get('ip')}:${s.master.get('port')}`;
  if (!nonEmpty(changes)) return unchanged(`monitors "${p.masterName}" (master now ${current}, quorum ${p.quorum}); settings as wanted`);
  return { changes, data: { kind: 'set', settings, authPass: passDiffers } satisfies SentinelData };
}

/** D: what to do; undefined only in a plan's prediction (apply never gets one). */
export const sentinel = defineModule<SentinelParams, z.input<typeof sentinelParams>, SentinelData | undefined>({
  name: 'redis.sentinel',
  params: sentinelParams,
  describe: (p) => `monitor "${p.masterName}" (quorum ${p.quorum})`,
  async check(host, p) {
    const s = new RedisScript(undefined, p.tls)
      .section('file', probeCommand(p.path, 'always'))
      .ask('master', sh`sentinel_ ${p.host} ${p.port} SENTINEL MASTER ${p.masterName}`);
    const a = await askSentinels(s, p.peers, p.masterName).run(host);
    const m = a.get('master');
    const master = m.rc === 0 ? parsePairs(m.out) : /No such master/i.test(m.err) ? null : undefined;
    return decideSentinel(p, { file: parseProbe(a.text('file')), master, peers: sentinelAnswers(a, p.peers.length) }, host.checkMode);
  },
  async apply(host, p, c) {
    const d = c.data;
    if (!d) throw new Error('bug: redis.sentinel applied a check-mode prediction');
    const local = sh`sentinel_ ${p.host} ${p.port}`;
    const ask = async (what: string, cmd: string, payload?: string): Promise<void> => {
      const s = new RedisScript(undefined, p.tls);
      if (payload !== undefined) s.payload(payload);
      const r = (await s.ask('cmd', cmd).run(host)).get('cmd');
      if (r.rc !== 0) throw new Error(`${what}: ${explainFailure(r)}`);
    };
    if (d.kind === 'bootstrap') {
      const content = await renderTemplate(host, p.bootstrap.template, {
        ...p.bootstrap.vars,
        monitor: d.monitor,
        masterName: p.masterName,
        quorum: p.quorum,
        downAfterMs: p.downAfterMs,
        failoverTimeoutMs: p.failoverTimeoutMs,
        parallelSyncs: p.parallelSyncs,
        authUser: p.authUser,
        authPass: new Secret(quoteArg(p.authPass.reveal())),
      });
      if (!content.split('\n').includes(SENTINEL_MARKER)) throw new Error(`template ${p.bootstrap.template} must contain the line "${SENTINEL_MARKER}"`);
      const want: DesiredFile = { path: p.path, content: Buffer.from(content), mode: p.mode, owner: p.owner, group: p.group, sensitive: true };
      // Stopped first: Sentinel flushes its state to this file, and must not overwrite ours.
      await runChecked(host, sh`systemctl stop -- ${p.service}`, `stop ${p.service}`);
      const state = parseProbe((await runChecked(host, probeCommand(p.path, 'never'), `read ${p.path}`)).stdout);
      await applyFile(host, want, state, planFile(want, state));
      await runChecked(host, sh`systemctl start -- ${p.service}`, `start ${p.service}`);
      return;
    }
    if (d.kind === 'monitor') {
      await ask('SENTINEL MONITOR', sh`${local} SENTINEL MONITOR ${p.masterName} ${d.monitor.ip} ${d.monitor.port} ${p.quorum}`);
      const rest = { ...sentinelSettings(p), 'auth-user': p.authUser };
      await ask('SENTINEL SET', sh`${local} SENTINEL SET ${p.masterName} ${Object.entries(rest).flat()}`);
      await ask('SENTINEL SET auth-pass', sh`${local} -x SENTINEL SET ${p.masterName} auth-pass`, p.authPass.reveal());
      return;
    }
    if (Object.keys(d.settings).length) await ask('SENTINEL SET', sh`${local} SENTINEL SET ${p.masterName} ${Object.entries(d.settings).flat()}`);
    if (d.authPass) await ask('SENTINEL SET auth-pass', sh`${local} -x SENTINEL SET ${p.masterName} auth-pass`, p.authPass.reveal());
  },
});

