/**
 * The drill framework with no host: objectives from inventory vars, the verdict, the restore
 * drill's marker comparison (lost writes, their span, foreign data refused) and host choice.
 */
import { describe, it, expect } from 'vitest';
import { judge, objectivesOf, parseDuration, verdictLines, type Measured } from '../../../src/drill/objectives.js';
import { compareMarkers, parseMarkers, restoreDrill } from '../../../src/drill/restore.js';
import { drillNamed } from '../../../src/drill/index.js';
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
