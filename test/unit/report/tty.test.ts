import { describe, expect, it } from 'vitest';
import { createReporter } from '../../../src/report/index.js';
import { stripAnsi } from '../../../src/render/ansi.js';
import { MASK } from '../../../src/secrets/secret.js';
import { SECRET_VALUE, runEvents, sink } from './events.fixture.js';

describe('tty reporter (listr2)', () => {
  it('draws a row per host, then the details and the recap; no secret anywhere', async () => {
    const out = sink({ tty: true });
    const r = createReporter({ mode: 'tty', diff: true, out: out.stream });
    for (const e of runEvents()) {
      r.emit(e);
      await new Promise((res) => setTimeout(res, 5)); // events arrive over time, as from hosts
    }
    await r.close();
    const text = stripAnsi(out.text());
    expect(text).not.toContain(SECRET_VALUE);
    expect(text).not.toContain('reportKEY');
    // Final rows of the live view.
    expect(text).toMatch(/✔ db1 +1 ok {2}1 changed {2}0 failed {2}done/);
    expect(text).toMatch(/✖ web1 +1 ok {2}0 changed {2}1 failed {2}1 skipped {2}done/);
    expect(text).toMatch(/✖ web22 .*unreachable/);
    // Details after the live view, grouped per host.
    const details = text.slice(text.indexOf('\nweb22\n  UNREACHABLE'));
    expect(details).toContain('\ndb1\n  changed');
    expect(details).toContain('changed  files.template /etc/app.env');
    expect(details).toContain(`+password=${MASK}`);
    expect(details).toContain('\nweb1\n  failed   command.run make');
    expect(details).toContain('\nweb22\n  UNREACHABLE connect ECONNREFUSED 10.0.0.3:22');
    expect(details).toMatch(/total \(3 hosts\)\s+2\s+1\s+1\s+1\s+1\s+2\.3 s/);
  });

  it('close() without run.end still ends the live view', async () => {
    const out = sink({ tty: true });
    const r = createReporter({ mode: 'tty', diff: false, out: out.stream });
    const events = runEvents().filter((e) => e.type !== 'run.end');
    events.forEach((e) => r.emit(e));
    await r.close();
    expect(stripAnsi(out.text())).toContain('changed  files.template /etc/app.env');
  });

  it('prints events that arrive after run.end as plain lines', async () => {
    const out = sink({ tty: true });
    const r = createReporter({ mode: 'tty', diff: false, out: out.stream });
    runEvents().forEach((e) => r.emit(e));
    r.emit({ type: 'host.failed', host: 'db1', error: 'late failure' });
    await r.close();
    expect(stripAnsi(out.text())).toMatch(/\[db1\] FAILED\s+late failure\n$/);
  });

  it('uses plain lines when there are more hosts than terminal rows', async () => {
    const out = sink({ tty: true });
    (out.stream as { rows: number }).rows = 5;
    const r = createReporter({ mode: 'tty', diff: false, out: out.stream });
    const hosts = Array.from({ length: 20 }, (_, i) => `h${i}`);
    r.emit({ type: 'run.start', runId: 'r', command: 'apply', mode: 'apply', inventory: 'lab', hosts, at: '' });
    r.emit({ type: 'task.result', host: 'h3', task: 'files.file /x', module: 'files.file', status: 'ok', changes: [], ms: 1 });
    await r.close();
    expect(stripAnsi(out.text())).toContain('[h3]  ok       files.file /x');
  });
});
