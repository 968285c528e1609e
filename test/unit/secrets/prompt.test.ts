import { describe, it, expect } from 'vitest';
import { PassThrough } from 'node:stream';
import { promptHidden, canPrompt } from '../../../src/secrets/prompt.js';

/** A stand-in terminal: a stream with isTTY and setRawMode, recording the raw-mode switches. */
function fakeTty() {
  const input = Object.assign(new PassThrough(), { isTTY: true, isRaw: false, modes: [] as boolean[] });
  (input as unknown as { setRawMode(m: boolean): void }).setRawMode = (m: boolean) => {
    input.modes.push(m);
    input.isRaw = m;
  };
  const written: string[] = [];
  const output = Object.assign(new PassThrough(), { write: (s: string) => (written.push(s), true) });
  return { io: { input: input as never, output: output as never }, input, written };
}

describe('hidden prompt', () => {
  it('reads a line in raw mode without echo, handling backspace, and restores the mode', async () => {
    const t = fakeTty();
    const answer = promptHidden('Vault password (prod): ', t.io);
    t.input.write('hunx\u007fter2');
    t.input.write('2\r');
    expect(await answer).toBe('hunter22');
    expect(t.written.join('')).toBe('Vault password (prod): \n'); // nothing echoed
    expect(t.input.modes).toEqual([true, false]);
  });

  it('Ctrl-C aborts with a UserError', async () => {
    const t = fakeTty();
    const answer = promptHidden('pw: ', t.io);
    t.input.write('abc\u0003');
    await expect(answer).rejects.toThrow('vault password prompt aborted');
  });

  it('refuses when the input is not a terminal', async () => {
    const io = { input: new PassThrough() as never, output: new PassThrough() as never };
    expect(canPrompt(io)).toBe(false);
    await expect(promptHidden('pw: ', io)).rejects.toThrow(/not a terminal/);
  });
});
