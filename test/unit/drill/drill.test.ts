/**
 * The drill framework with no host: objectives from inventory vars, the verdict, the restore
 * drill's marker comparison (lost writes, their span, foreign data refused), the Sentinel drill's
 * write log (recovery, lost writes) and each drill's choice of host.
 */
import { describe, it, expect } from 'vitest';
import { judge, objectivesOf, parseDuration, verdictLines, type Measured } from '../../../src/drill/objectives.js';
import { compareMarkers, parseMarkers, restoreDrill } from '../../../src/drill/restore.js';
import { drillNamed } from '../../../src/drill/index.js';
import { firstOnNewMaster, lostWrites, parseWrites, redisFailoverDrill, waitForWriteLoad, WRITES_BEFORE_DISASTER } from '../../../src/drill/redis-failover.js';
import { postgresFailoverDrill } from '../../../src/drill/postgres-failover.js';
import { Secret } from '../../../src/secrets/secret.js';
import { UserError } from '../../../src/errors.js';
import { fakeInventory } from '../roles/context.js';

describe('objectives', () => {
  it.each([
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1.5h', 5_400_000],
    ['250ms', 250],
    ['5', undefined],
    ['5 m', undefined],
    ['soon', undefined],
  ])('parseDuration(%j) = %j', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it('the seed\'s targets by default (RTO 1 h, RPO 5 min); the inventory\'s when set', () => {
    expect(objectivesOf({}, 'h')).toEqual({ rtoMs: 3_600_000, rpoMs: 300_000 });
    expect(objectivesOf({ dr_objectives: { rto: '15m' } }, 'h')).toEqual({ rtoMs: 900_000, rpoMs: 300_000 });
    expect(objectivesOf({ dr_objectives: { rto: '30s', rpo: '0s' } }, 'h')).toEqual({ rtoMs: 30_000, rpoMs: 0 });
  });

  it('a bad objective is an input error naming the key', () => {
    expect(() => objectivesOf({ dr_objectives: { rto: 'an hour' } }, 'db1')).toThrow(UserError);
    expect(() => objectivesOf({ dr_objectives: { rto: 'an hour' } }, 'db1')).toThrow(/host db1: dr_objectives\.rto: a duration/);
    expect(() => objectivesOf({ dr_objectives: { rtp: '5m' } }, 'db1')).toThrow(UserError);
  });

  it('met only when both are within their targets; the lines say which was missed', () => {
    const m: Measured = { rtoMs: 4200, rpoMs: 0, acknowledged: 120, lost: 0, notes: [] };
    const o = { rtoMs: 3_600_000, rpoMs: 300_000 };
    expect(judge(m, o)).toEqual({ rtoMet: true, rpoMet: true, met: true });
    expect(judge({ ...m, rtoMs: 3_600_001 }, o)).toEqual({ rtoMet: false, rpoMet: true, met: false });
    expect(judge({ ...m, rpoMs: 300_001, lost: 3 }, o).met).toBe(false);
    expect(verdictLines(m, o, judge(m, o))).toEqual(['RTO 4.2 s (target 60.0 min): met', 'RPO 0 ms, 0 of 120 acknowledged writes lost (target 5.0 min): met']);
    expect(verdictLines({ ...m, rtoMs: 7_200_000 }, o, judge({ ...m, rtoMs: 7_200_000 }, o))[0]).toBe('RTO 120.0 min (target 60.0 min): MISSED');
  });
});

describe('restore drill: markers', () => {
  const acked = parseMarkers('1 1764538000000\n2 1764538000200\n3 1764538000400\n4 1764538000600\n5 17645380');
  it('parses "seq epoch-ms" lines; a torn last line is no marker', () => {
    expect(acked).toHaveLength(4);
    expect(acked[3]).toEqual({ seq: 4, ms: 1764538000600 });
  });

  it('lost writes and their span; none lost is RPO 0', () => {
    expect(compareMarkers(acked, acked.slice(0, 2))).toEqual({ lost: 2, rpoMs: 400 });
    expect(compareMarkers(acked, acked)).toEqual({ lost: 0, rpoMs: 0 });
    expect(compareMarkers(acked, [])).toEqual({ lost: 4, rpoMs: 800 });
  });

  it('restored data that is not what was written fails the drill', () => {
    expect(() => compareMarkers(acked, [acked[0], { seq: 2, ms: 1 }])).toThrow(/restored marker 2 .* is not the one written/);
    expect(() => compareMarkers(acked.slice(0, 1), acked.slice(0, 2))).toThrow(/not the one written \(none\)/);
  });
});

describe('restore drill: which host', () => {
  const inv = fakeInventory({
    hosts: {
      backup1: { address: '10.0.0.61', groups: ['backup'] },
      api1: { address: '10.0.0.21', groups: ['api'] },
      api2: { address: '10.0.0.22', groups: ['api'] },
    },
  });
  it('the first selected host that is not a repository host', () => {
    expect(restoreDrill.hosts(inv, [])).toEqual(['api1']);
    expect(restoreDrill.hosts(inv, ['api2'])).toEqual(['api2']);
    expect(restoreDrill.hosts(inv, ['backup1:api2'])).toEqual(['api2']);
  });
  it('only the backup host selected: an input error', () => {
    expect(() => restoreDrill.hosts(inv, ['backup1'])).toThrow(UserError);
  });
  it('drills by name', () => {
    expect(drillNamed('restore')).toBe(restoreDrill);
    expect(drillNamed('nope')).toBeUndefined();
  });
});

describe('redis-failover drill: writes', () => {
  const log = ['ok 1 1764538000000 10.0.0.41', 'ok 2 1764538000100 10.0.0.41', 'err 3 1764538000200 10.0.0.41', 'err 4 1764538000300 ', 'ok 5 1764538000400 10.0.0.42', 'ok 6 1764538000500 10.0.0.42', 'ok 7 17645'].join('\n');
  const writes = parseWrites(log);
  it('parses "ok|err seq host-ms master" (an empty master: the Sentinel did not answer); a torn line is dropped', () => {
    expect(writes.map((w) => [w.ok, w.seq, w.master])).toEqual([
      [true, 1, '10.0.0.41'],
      [true, 2, '10.0.0.41'],
      [false, 3, '10.0.0.41'],
      [false, 4, ''],
      [true, 5, '10.0.0.42'],
      [true, 6, '10.0.0.42'],
    ]);
  });
  it('recovery: the first acknowledged write on another master at or after the failover started', () => {
    expect(firstOnNewMaster(writes, '10.0.0.41', 1764538000150)?.seq).toBe(5);
    expect(firstOnNewMaster(writes, '10.0.0.41', 1764538000450)?.seq).toBe(6);
    expect(firstOnNewMaster(writes.slice(0, 4), '10.0.0.41', 0)).toBeUndefined();
  });
  it('lost: acknowledged and missing on the new master; the span from the last kept write before them', () => {
    expect(lostWrites(writes, new Set([1, 2, 5, 6]))).toEqual({ lost: [], rpoMs: 0 });
    const { lost, rpoMs } = lostWrites(writes, new Set([1, 5, 6]));
    expect(lost.map((w) => w.seq)).toEqual([2]);
    expect(rpoMs).toBe(100);
    expect(lostWrites(writes, new Set([5, 6])).rpoMs).toBe(200); // none kept before: one interval before the first lost
  });
});

describe('the drills\' write load before the disaster', () => {
  const log = (ok: number, err = 0) => Array.from({ length: ok + err }, (_, i) => `${i < err ? 'err' : 'ok'} ${i + 1} ${1700000000000 + i * 100} db1`).join('\n');

  it(`waits for ${WRITES_BEFORE_DISASTER} acknowledged writes, however long a slow host takes (failed writes do not count)`, async () => {
    let reads = 0;
    await waitForWriteLoad(async () => log(Math.min(++reads * 3, 20), 5), 10_000, 1);
    expect(reads).toBe(Math.ceil(WRITES_BEFORE_DISASTER / 3));
  });

  it('gives up with how many it saw when the server takes no writes', async () => {
    await expect(waitForWriteLoad(async () => log(2, 7) + '\nok 10 17', 50, 5)).rejects.toThrow(/the load marker had 2 write\(s\) acknowledged after 0\.05 s \(10 before the disaster\)/);
  });
});

describe('redis-failover drill: which host', () => {
  const vaulted = { redis_admin_password: new Secret('admin-pw') };
  const inv = (vars: Record<string, unknown>) =>
    fakeInventory({
      hosts: {
        redis1: { address: '10.0.0.41', groups: ['redis_master', 'sentinel'] },
        redis2: { address: '10.0.0.42', groups: ['redis_replica', 'sentinel'] },
        api1: { address: '10.0.0.21', groups: ['api'] },
      },
      groups: { all: { vars } },
    });
  it('the first Sentinel host, or the one -l names', () => {
    expect(redisFailoverDrill.hosts(inv(vaulted), [])).toEqual(['redis1']);
    expect(redisFailoverDrill.hosts(inv(vaulted), ['redis2'])).toEqual(['redis2']);
  });
  it('no Sentinel selected, no vaulted admin password, or TLS on: an input error', () => {
    expect(() => redisFailoverDrill.hosts(inv(vaulted), ['api1'])).toThrow(/no Sentinel host selected/);
    expect(() => redisFailoverDrill.hosts(inv({}), [])).toThrow(/no redis_admin_password/);
    expect(() => redisFailoverDrill.hosts(inv({ ...vaulted, redis_tls: { enabled: true } }), [])).toThrow(UserError);
  });
});

describe('postgres-failover drill: its hosts', () => {
  const pg = (primaries: string[], replicas: string[]) =>
    fakeInventory({
      hosts: Object.fromEntries([
        ...primaries.map((h) => [h, { address: '10.0.0.1', groups: ['postgres_primary'] }]),
        ...replicas.map((h) => [h, { address: '10.0.0.2', groups: ['postgres_replica'] }]),
        ['backup1', { address: '10.0.0.9', groups: ['backup'] }],
      ]),
      groups: { postgres: { children: ['postgres_primary', 'postgres_replica'] } },
    });

  it('the replica to promote first (-l picks it), then the primary', () => {
    expect(drillNamed('postgres-failover')).toBe(postgresFailoverDrill);
    expect(postgresFailoverDrill.hosts(pg(['db1'], ['db2', 'db3']), [])).toEqual(['db2', 'db1']);
    expect(postgresFailoverDrill.hosts(pg(['db1'], ['db2', 'db3']), ['db3'])).toEqual(['db3', 'db1']);
  });

  it('no replica, a limit naming none, or not exactly one primary: an input error', () => {
    expect(() => postgresFailoverDrill.hosts(pg(['db1'], []), [])).toThrow(/no replica selected/);
    expect(() => postgresFailoverDrill.hosts(pg(['db1'], ['db2']), ['backup1'])).toThrow(UserError);
    expect(() => postgresFailoverDrill.hosts(pg(['db1', 'db3'], ['db2']), [])).toThrow(/names db1, db3 as the primary/);
    expect(() => postgresFailoverDrill.hosts(pg([], ['db2']), [])).toThrow(/names no host as the primary/);
  });
});
