/** Warnings: each distinct text printed once per run by the text reporters, however many hosts carry it (meta.warn). */
import { describe, expect, it } from 'vitest';
import { createReporter } from '../../../src/report/index.js';
import { stripAnsi } from '../../../src/render/ansi.js';
import type { RunEvent } from '../../../src/report/events.js';
import { warn } from '../../../src/modules/meta.js';
import { fakeHost } from '../modules/fake-host.js';
import { sink } from './events.fixture.js';

const EOL = 'Node.js 18 is past its end of life (2025-04-30): no more security fixes';

function events(): RunEvent[] {
  const result = (host: string): RunEvent => ({
    type: 'task.result', host, task: 'meta.warn node end of life', module: 'meta.warn', status: 'ok', changes: [], reason: EOL, warning: EOL, ms: 0,
  });
  return [
    { type: 'run.start', runId: 'r1', command: 'plan site.yaml', mode: 'check', inventory: 'lab', hosts: ['api1', 'api2'], at: '2025-01-01T00:00:00.000Z' },
    { type: 'play.start', play: 'api', hosts: ['api1', 'api2'] },
    result('api1'),
    result('api2'),
    { type: 'play.end', play: 'api' },
    {
      type: 'run.end', runId: 'r1', durationMs: 10, interrupted: false, exitCode: 0,
      recap: ['api1', 'api2'].map((host) => ({ host, ok: 1, changed: 0, failed: 0, skipped: 0, unreachable: false, durationMs: 5 })),
    },
  ];
}

const count = (text: string, what: string) => text.split(what).length - 1;

describe('warnings', () => {
  it('meta.warn changes nothing and carries its message as the warning', async () => {
    const c = await warn.module.check(fakeHost([]), { what: 'node end of life', message: EOL });
    expect(c).toMatchObject({ changes: [], reason: EOL, warning: EOL });
  });

  it('the plain reporter prints a warning once, though an ok task is otherwise silent', () => {
    const out = sink();
    const r = createReporter({ mode: 'plain', diff: false, out: out.stream });
    events().forEach((e) => r.emit(e));
    expect(count(out.text(), EOL)).toBe(1);
    expect(out.text()).toContain(`[api1] ok       meta.warn node end of life\n    warning: ${EOL}`);
    // A warning that names its host is one per host.
    const out2 = sink();
    const r2 = createReporter({ mode: 'plain', diff: false, out: out2.stream });
    for (const e of events()) r2.emit(e.type === 'task.result' ? { ...e, warning: `${e.host}: the inventory disagrees` } : e);
    expect(count(out2.text(), 'the inventory disagrees')).toBe(2);
  });

  it('the tty reporter prints it once, in the details before the recap', async () => {
    const out = sink({ tty: true });
    const r = createReporter({ mode: 'tty', diff: false, out: out.stream });
    events().forEach((e) => r.emit(e));
    await r.close();
    const text = stripAnsi(out.text());
    expect(count(text, EOL)).toBe(1);
    expect(text.indexOf(`warning: ${EOL}`)).toBeLessThan(text.indexOf('total (2 hosts)'));
  });
});
