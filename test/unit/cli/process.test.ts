/** Ctrl-C during a run, as the CLI maps it: first stop, second abort; handlers gone afterwards. */
import { describe, it, expect } from 'vitest';
import { withRunControl } from '../../../src/cli/process.js';

describe('withRunControl', () => {
  it('maps the first SIGINT to stop and the second (or a SIGTERM) to abort, for as long as the run lasts', async () => {
    const before = process.listenerCount('SIGINT');
    const seen: string[] = [];
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      const code = await withRunControl(async (control) => {
        let aborts = 0;
        control.onAbort(() => aborts++);
        process.emit('SIGINT');
        seen.push(`stopping=${control.stopping} aborted=${control.aborted}`);
        process.emit('SIGTERM');
        seen.push(`stopping=${control.stopping} aborted=${control.aborted} aborts=${aborts}`);
        return 130;
      });
      expect(code).toBe(130);
    } finally {
      process.stderr.write = stderr;
    }
    expect(seen).toEqual(['stopping=true aborted=false', 'stopping=true aborted=true aborts=1']);
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});
