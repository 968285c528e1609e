/**
 * The Check contract is enforced by the compiler (`npx tsc` type-checks this file): a
 * no-change result must say why, a change must carry its module's data, and apply() only
 * takes checks with changes. Each @ts-expect-error fails the type check if the rule is lost.
 */
import { describe, expect, it } from 'vitest';
import { hasChanges, nonEmpty, unchanged, type Change, type Changes, type Check } from '../../../src/modules/types.js';

interface Data {
  args: string[];
}

describe('Check<D>', () => {
  it('rejects a no-change result without a reason, and a change without data', () => {
    // @ts-expect-error: empty changes need a reason
    const noReason: Check = { changes: [] };
    // @ts-expect-error: a change of a module with data must carry it
    const noData: Check<Data> = { changes: [{ what: 'x' }] };
    const list: Change[] = [];
    // @ts-expect-error: a list built at run time may be empty: narrow it with nonEmpty() first
    const unknownLength: Check<Data> = { changes: list, data: { args: [] } };
    const ok: Check<Data> = nonEmpty(list) ? { changes: list, data: { args: [] } } : unchanged('nothing to do');
    expect([noReason, noData, unknownLength, ok].length).toBe(4);
  });

  it('apply() takes only checks with changes, whose data is typed', () => {
    const apply = (c: Changes<Data>): string[] => c.data.args;
    const c: Check<Data> = { changes: [{ what: 'run' }], data: { args: ['-a'] } };
    // @ts-expect-error: a Check may have no changes
    expect(() => apply(unchanged('up to date'))).toThrow();
    expect(hasChanges(c) ? apply(c) : []).toEqual(['-a']);
    expect(hasChanges(unchanged('up to date'))).toBe(false);
  });

  it('unchanged() keeps diff/always/skipped but always has no changes', () => {
    expect(unchanged('skip', { skipped: true })).toEqual({ changes: [], reason: 'skip', skipped: true });
  });
});
