/**
 * haproxy.server: a backend server's administrative state through HAProxy's admin socket
 * (`stats socket ... level admin`) — ready, drain or maint — and what that state promises,
 * waited for: no session left (drain, maint) or the server UP again (ready). The weekly
 * patch run and rolling deploys use it on every load balancer:
 *
 *   haproxy.server({ backend: 'api', server: 'api1', state: 'drain' })   // before the work
 *   haproxy.server({ backend: 'api', server: 'api1', state: 'ready' })   // after: waits for UP
 *
 * check() reads `show servers state` and `show stat` in one round trip; only the forced
 * flags (set by this module or an operator) are managed, so a server in maintenance because
 * of its config or a tracked server is reported, never silently "fixed".
 */
import { z } from 'zod';
import { sh } from '../shell/quote.js';
import { pathSchema } from './whole-file.js';
import { commandFailed, splitSections } from './run-checked.js';
import { defineModule, nonEmpty, unchanged, type Change, type Check, type HostContext } from './types.js';

const MARK = '@@infra-haproxy@@';
const POLL_MS = 500;
/** The stats socket the haproxy-keepalived role configures. */
export const DEFAULT_ADMIN_SOCKET = '/run/haproxy/admin.sock';

/** srv_admin_state bits (haproxy include/haproxy/server-t.h). */
export const ADMIN = { FMAINT: 0x01, IMAINT: 0x02, CMAINT: 0x04, FDRAIN: 0x08, IDRAIN: 0x10, RMAINT: 0x20, HMAINT: 0x40 } as const;
/** srv_op_state: 0 stopped, 1 starting, 2 running (UP), 3 stopping. */
const RUNNING = 2;

const proxyName = z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'an HAProxy backend or server name');

const serverParams = z
  .object({
    backend: proxyName,
    server: proxyName,
    state: z.enum(['ready', 'drain', 'maint']),
    /** drain/maint: wait until no session is left; ready: wait until the server is UP (its health check passes). */
    wait: z.boolean().default(true),
    timeoutMs: z.number().int().positive().default(120_000),
    socket: pathSchema.default(DEFAULT_ADMIN_SOCKET),
  })
  .strict();
export type ServerParams = z.infer<typeof serverParams>;
export type AdminState = ServerParams['state'];

export interface ServerStatus {
  /** srv_admin_state bit field. */
  admin: number;
  /** srv_op_state. */
  op: number;
  /** Current sessions (scur). */
  sessions: number;
  /** The stats page's status: "UP", "DOWN", "DRAIN", "MAINT", "UP 1/3", "no check" ... */
  status: string;
}

/** Finds the server in `show servers state <backend>` (format 1) and `show stat <backend> 4 -1` (CSV). */
export function parseServerStatus(serversState: string, stat: string, server: string): ServerStatus | undefined {
  const header = serversState.split('\n').find((l) => l.startsWith('# be_id'));
  if (!header) return undefined;
  const cols = header.slice(2).split(' ');
  const row = serversState
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && l.includes(' '))
    .map((l) => l.split(' '))
    .find((f) => f[cols.indexOf('srv_name')] === server);
  if (!row) return undefined;
  const statLines = stat.split('\n').filter(Boolean);
  const statCols = (statLines.find((l) => l.startsWith('# ')) ?? '').slice(2).split(',');
  const statRow = statLines.map((l) => l.split(',')).find((f) => f[statCols.indexOf('svname')] === server);
  return {
    admin: Number(row[cols.indexOf('srv_admin_state')]),
    op: Number(row[cols.indexOf('srv_op_state')]),
    sessions: Number(statRow?.[statCols.indexOf('scur')] ?? 0),
    status: statRow?.[statCols.indexOf('status')] ?? 'unknown',
  };
}

/** Server names of `show servers state`, for "no such server" errors. */
export function serverNames(serversState: string): string[] {
  const header = serversState.split('\n').find((l) => l.startsWith('# be_id'));
  if (!header) return [];
  const i = header.slice(2).split(' ').indexOf('srv_name');
  return serversState.split('\n').filter((l) => l && !l.startsWith('#') && l.includes(' ')).map((l) => l.split(' ')[i]);
}

/** The forced state: what `set server ... state` set. */
export function adminStateOf(admin: number): AdminState {
  if (admin & ADMIN.FMAINT) return 'maint';
  if (admin & ADMIN.FDRAIN) return 'drain';
  return 'ready';
}

/** True when what the state promises holds: no sessions (drain, maint), UP (ready). */
export function settled(state: AdminState, s: ServerStatus): boolean {
  return state === 'ready' ? s.op === RUNNING : s.sessions === 0;
}

/** What apply() needs from check(): whether the state must be set (else only wait). */
interface ServerData {
  set: boolean;
}

/** The decision, pure. */
export function decideServer(p: ServerParams, s: ServerStatus): Check<ServerData> {
  const id = `${p.backend}/${p.server}`;
  const have = adminStateOf(s.admin);
  const changes: Change[] = [];
  if (have !== p.state) changes.push({ what: `${id} state`, from: have, to: p.state });
  if (p.wait && !settled(p.state, s)) {
    changes.push(
      p.state === 'ready'
        ? { what: `wait until ${id} is UP`, from: s.status }
        : { what: `wait for the sessions of ${id} to close`, from: String(s.sessions), to: '0' },
    );
  }
  const held = s.admin & (ADMIN.IMAINT | ADMIN.CMAINT | ADMIN.RMAINT | ADMIN.HMAINT) ? ` (also held in maintenance by haproxy: admin state 0x${s.admin.toString(16)})` : '';
  if (!nonEmpty(changes)) return unchanged(`${id} is ${have} (${s.status}, ${s.sessions} sessions)${held}`);
  return {
    changes,
    diff: have === p.state ? undefined : [{ kind: 'value', name: id, before: have, after: p.state }],
    data: { set: have !== p.state },
  };
}

/** One command on the admin socket (non-interactive: haproxy answers and closes). */
const socketCommand = (socket: string, cmd: string): string => sh`echo ${cmd} | socat -t 5 stdio ${`unix-connect:${socket}`}`;

async function readStatus(host: HostContext, p: ServerParams): Promise<ServerStatus> {
  const script = [
    sh`[ -S ${p.socket} ] || { echo ${`no haproxy admin socket at ${p.socket} (is haproxy running with "stats socket ... level admin"?)`} >&2; exit 3; }`,
    `echo ${MARK}state`,
    socketCommand(p.socket, `show servers state ${p.backend}`),
    `echo ${MARK}stat`,
    socketCommand(p.socket, `show stat ${p.backend} 4 -1`),
  ].join('\n');
  const r = await host.run(script);
  if (r.code !== 0) throw commandFailed(`read ${p.backend}/${p.server} from ${p.socket}`, r);
  const s = splitSections(r.stdout, MARK);
  const state = s.get('state') ?? '';
  if (/Can't find backend/.test(state)) throw new Error(`haproxy has no backend "${p.backend}"`);
  const status = parseServerStatus(state, s.get('stat') ?? '', p.server);
  if (!status) throw new Error(`backend ${p.backend} has no server "${p.server}" (servers: ${serverNames(state).join(', ') || 'none'})`);
  return status;
}

export const server = defineModule<ServerParams, z.input<typeof serverParams>, ServerData>({
  name: 'haproxy.server',
  params: serverParams,
  describe: (p) => `${p.backend}/${p.server} ${p.state}`,
  async check(host, p) {
    return decideServer(p, await readStatus(host, p));
  },
  async apply(host, p, c) {
    if (c.data.set) {
      const r = await host.run(socketCommand(p.socket, `set server ${p.backend}/${p.server} state ${p.state}`));
      // Success is an empty answer; anything else is haproxy saying why not.
      if (r.code !== 0 || r.stdout.trim()) throw new Error(`set server ${p.backend}/${p.server} state ${p.state}: ${r.stdout.trim() || r.stderr.trim()}`);
    }
    if (!p.wait) return;
    const deadline = Date.now() + p.timeoutMs;
    for (;;) {
      const s = await readStatus(host, p);
      if (settled(p.state, s)) return;
      if (Date.now() > deadline) {
        const what = p.state === 'ready' ? `not UP (status ${s.status})` : `${s.sessions} sessions still open`;
        throw new Error(`${p.backend}/${p.server}: ${what} after ${Math.round(p.timeoutMs / 1000)}s`);
      }
      await new Promise((res) => setTimeout(res, POLL_MS));
    }
  },
});
