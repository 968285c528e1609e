import { describe, expect, it } from 'vitest';
import { createReporter } from '../../../src/report/index.js';
import { redactStrings } from '../../../src/report/json.js';
import type { RunEvent } from '../../../src/report/events.js';
import { MASK, Secret } from '../../../src/secrets/secret.js';
import { SECRET_VALUE, TLS_KEY, runEvents, sink } from './events.fixture.js';

describe('json reporter', () => {
  it('writes one parseable JSON object per event, with no registered secret', async () => {
    const out = sink();
    const r = createReporter({ mode: 'json', diff: true, out: out.stream });
    const events = runEvents();
    events.forEach((e) => r.emit(e));
    await r.close();
    const text = out.text();
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(events.length);
    const parsed = lines.map((l) => JSON.parse(l) as RunEvent);
    expect(parsed.map((e) => e.type)).toEqual(events.map((e) => e.type));
    expect(text).not.toContain(SECRET_VALUE);
    // JSON escapes the key's newlines: its lines must not survive either.
    expect(text).not.toContain('AAAAreportKEY1');
    expect(text).not.toContain('reportXYZ9');

    const changed = parsed.find((e) => e.type === 'task.result' && e.status === 'changed');
    if (changed?.type !== 'task.result') throw new Error('no changed task');
    const [file, sensitive] = changed.diff!;
    expect(file).toMatchObject({ kind: 'file', path: '/etc/app.env', before: 'user=app\npassword=old\n' });
    if (file.kind !== 'file') throw new Error('not a file diff');
    expect(file.after).toBe(`user=app\npassword=${MASK}\nkey=${MASK}\n`);
    expect(sensitive).toMatchObject({ kind: 'file', before: null, after: '(content hidden: sensitive)', sensitive: true });

    const recap = parsed.at(-1);
    expect(recap).toMatchObject({ type: 'run.end', exitCode: 1, durationMs: 2345 });
  });

  it('redacts Secret instances and nested strings, leaving other values alone', () => {
    const s = new Secret('deep-secret-5511');
    expect(redactStrings({ a: [s, 'x deep-secret-5511 y', 3, null, true], b: { c: 'deep-secret-5511' } })).toEqual({
      a: [MASK, `x ${MASK} y`, 3, null, true],
      b: { c: MASK },
    });
    expect(TLS_KEY).toContain('\n');
  });
});
