/**
 * haproxy.server without a host: parsing the admin socket's answers (real HAProxy 2.6 output),
 * the decision table, and what check/apply send to the socket.
 */
import { describe, expect, it } from 'vitest';
import { haproxy } from '../../../src/modules/index.js';
import { ADMIN, adminStateOf, decideServer, parseServerStatus, serverNames, type ServerStatus } from '../../../src/modules/haproxy.js';
import { fakeHost, withChanges } from './fake-host.js';

/** `show servers state api` on HAProxy 2.6.12: api1 drained (admin 8), api2 ready. */
const SERVERS_STATE = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 api 1 api1 10.213.251.21 2 8 1 1 0 1 0 2 7 0 0 0 - 80 - 0 0 - - 0
3 api 2 api2 10.213.251.22 0 0 1 1 4 6 0 0 6 0 0 0 - 80 - 0 0 - - 0
`;
/** `show stat api 4 -1` (columns cut after the ones the module reads, as haproxy's CSV is positional). */
const STAT = `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
api,api1,0,0,3,5,,40,0,0,,0,,0,0,0,0,DRAIN,0
api,api2,0,0,0,0,,12,0,0,,0,,0,0,0,0,DOWN,1
`;

const status = (s: Partial<ServerStatus>): ServerStatus => ({ admin: 0, op: 2, sessions: 0, status: 'UP', ...s });
const params = (v: Record<string, unknown>) => haproxy.server.module.params.parse({ backend: 'api', server: 'api1', state: 'drain', ...v });

describe('parsing the admin socket', () => {
  it('finds a server in show servers state + show stat', () => {
    expect(parseServerStatus(SERVERS_STATE, STAT, 'api1')).toEqual({ admin: 8, op: 2, sessions: 3, status: 'DRAIN' });
    expect(parseServerStatus(SERVERS_STATE, STAT, 'api2')).toEqual({ admin: 0, op: 0, sessions: 0, status: 'DOWN' });
    expect(parseServerStatus(SERVERS_STATE, STAT, 'api9')).toBeUndefined();
    expect(serverNames(SERVERS_STATE)).toEqual(['api1', 'api2']);
  });

  it('reads the forced state from the admin bits; other maintenance causes are not ours', () => {
    expect(adminStateOf(0)).toBe('ready');
    expect(adminStateOf(ADMIN.FDRAIN)).toBe('drain');
    expect(adminStateOf(ADMIN.FMAINT | ADMIN.FDRAIN)).toBe('maint');
    expect(adminStateOf(ADMIN.CMAINT)).toBe('ready');
  });
});

describe('decideServer', () => {
  it.each([
    ['drain a ready server (sessions open)', { state: 'drain' }, { sessions: 3 }, ['api/api1 state', 'wait for the sessions of api/api1 to close']],
    ['drain, already drained and empty', { state: 'drain' }, { admin: ADMIN.FDRAIN }, []],
    ['drained but sessions left: still waiting (a re-run waits again)', { state: 'drain' }, { admin: ADMIN.FDRAIN, sessions: 2 }, ['wait for the sessions of api/api1 to close']],
    ['drain without waiting', { state: 'drain', wait: false }, { sessions: 3 }, ['api/api1 state']],
    ['maint from drain', { state: 'maint' }, { admin: ADMIN.FDRAIN }, ['api/api1 state']],
    ['ready from maint: then wait until UP', { state: 'ready' }, { admin: ADMIN.FMAINT, op: 0, status: 'MAINT' }, ['api/api1 state', 'wait until api/api1 is UP']],
    ['ready and UP', { state: 'ready' }, {}, []],
    ['ready but DOWN (its health check fails): a change, not a silent ok', { state: 'ready' }, { op: 0, status: 'DOWN' }, ['wait until api/api1 is UP']],
  ])('%s', (_n, p, s, whats) => {
    const c = decideServer(params(p), status(s));
    expect(c.changes.map((x) => x.what)).toEqual(whats);
    if (whats.length === 0) expect(c.reason).toMatch(/^api\/api1 is /);
  });

  it('says when haproxy itself holds the server in maintenance', () => {
    expect(decideServer(params({ state: 'ready', wait: false }), status({ admin: ADMIN.CMAINT })).reason).toMatch(/held in maintenance by haproxy: admin state 0x4/);
  });

  it('names and states are checked before anything runs', () => {
    expect(haproxy.server.module.params.safeParse({ backend: 'api; reload', server: 'api1', state: 'drain' }).success).toBe(false);
    expect(haproxy.server.module.params.safeParse({ backend: 'api', server: 'api1', state: 'disabled' }).success).toBe(false);
  });
});

describe('haproxy.server check/apply', () => {
  const answer = (state = SERVERS_STATE, stat = STAT) => ({ stdout: `@@infra-haproxy@@state\n${state}@@infra-haproxy@@stat\n${stat}` });

  it('check reads both answers in one round trip, through the socket, quoted', async () => {
    const host = fakeHost([answer()]);
    const c = await haproxy.server.module.check(host, params({ state: 'drain' }));
    expect(c.changes.map((x) => x.what)).toEqual(['wait for the sessions of api/api1 to close']);
    expect(host.commands).toHaveLength(1);
    expect(host.commands[0]).toContain(`echo 'show servers state api' | socat -t 5 stdio unix-connect:/run/haproxy/admin.sock`);
    expect(host.commands[0]).toContain(`echo 'show stat api 4 -1' | socat`);
  });

  it('an unknown server or backend is an error naming what exists', async () => {
    await expect(haproxy.server.module.check(fakeHost([answer()]), params({ server: 'api9' }))).rejects.toThrow('backend api has no server "api9" (servers: api1, api2)');
    await expect(haproxy.server.module.check(fakeHost([answer("Can't find backend.\n", '')]), params({ backend: 'web' }))).rejects.toThrow('haproxy has no backend "web"');
  });

  it('apply sets the state, then polls until the promise holds', async () => {
    const drained = (sessions: number) => answer(SERVERS_STATE, STAT.replace('api,api1,0,0,3', `api,api1,0,0,${sessions}`));
    const host = fakeHost([{ stdout: '\n' }, drained(1), drained(0)]);
    const p = params({ state: 'drain' });
    await haproxy.server.module.apply(host, p, withChanges(decideServer(p, status({ sessions: 3 }))));
    expect(host.commands[0]).toBe(`echo 'set server api/api1 state drain' | socat -t 5 stdio unix-connect:/run/haproxy/admin.sock`);
    expect(host.commands).toHaveLength(3);
  });

  it('apply reports haproxy refusing the command, and a wait that times out', async () => {
    const p = params({ state: 'maint' });
    await expect(haproxy.server.module.apply(fakeHost([{ stdout: 'No such server.\n' }]), p, withChanges(decideServer(p, status({}))))).rejects.toThrow(
      'set server api/api1 state maint: No such server.',
    );
    const slow = params({ state: 'drain', timeoutMs: 1 });
    const stuck = answer(SERVERS_STATE, STAT);
    await expect(haproxy.server.module.apply(fakeHost([stuck, stuck]), slow, withChanges(decideServer(slow, status({ admin: ADMIN.FDRAIN, sessions: 3 }))))).rejects.toThrow(
      'api/api1: 3 sessions still open after 0s',
    );
  });
});
