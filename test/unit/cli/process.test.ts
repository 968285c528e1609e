/** Ctrl-C during a run, as the CLI maps it: first stop, second abort; handlers gone afterwards. */
import { describe, it, expect } from 'vitest';
import { onOutputError, withRunControl } from '../../../src/cli/process.js';

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

  it('a closed terminal (SIGHUP) or an output nobody reads any more stops the run as the first Ctrl-C does; other write errors are errors', async () => {
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    const seen: string[] = [];
    try {
      await withRunControl(async (control) => {
        process.emit('SIGHUP');
        seen.push(`SIGHUP stopping=${control.stopping} aborted=${control.aborted}`);
        return 0;
      });
      await withRunControl(async (control) => {
        for (const code of ['EPIPE', 'EIO', 'ERR_STREAM_DESTROYED']) onOutputError(Object.assign(new Error(code), { code }));
        seen.push(`reader gone stopping=${control.stopping} aborted=${control.aborted}`);
        expect(() => onOutputError(Object.assign(new Error('disk full'), { code: 'ENOSPC' }))).toThrow('disk full');
        return 0;
      });
    } finally {
      process.stderr.write = stderr;
    }
    expect(seen).toEqual(['SIGHUP stopping=true aborted=false', 'reader gone stopping=true aborted=false']);
    expect(process.listenerCount('SIGHUP')).toBe(0);
  });
});
