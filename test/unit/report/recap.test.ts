import { describe, expect, it } from 'vitest';
import { renderRecap } from '../../../src/report/recap.js';
import { stripAnsi } from '../../../src/render/ansi.js';
import { MASK, Secret } from '../../../src/secrets/secret.js';
import { recap } from './events.fixture.js';

describe('renderRecap', () => {
  it('prints a row per host, totals and the errors of troubled hosts', () => {
    expect(renderRecap(recap, 2345, false).split('\n')).toEqual([
      'host             ok  changed  failed  unreachable  skipped    time',
      'db1               1        1       0            0        0   1.5 s',
      'web1              1        0       1            0        1  800 ms',
      'web22             0        0       0            1        0   12 ms',
      '──────────────────────────────────────────────────────────────────',
      'total (3 hosts)   2        1       1            1        1   2.3 s',
      '',
      'web1: failed: task failed',
      'web22: unreachable: connect ECONNREFUSED 10.0.0.3:22',
    ]);
  });

  it('colors only when asked, with the same text underneath', () => {
    const colored = renderRecap(recap, 2345, true);
    expect(colored).toContain('\u001b[31m');
    expect(stripAnsi(colored)).toBe(renderRecap(recap, 2345, false));
  });

  it('formats long runs in minutes and masks secrets in errors', () => {
    new Secret('recap-secret-31');
    const out = renderRecap([{ host: 'h', ok: 0, changed: 0, failed: 1, skipped: 0, unreachable: false, durationMs: 125_000, error: 'auth with recap-secret-31' }], 125_000, false);
    expect(out).toContain('2m 05s');
    expect(out).toContain(`h: failed: auth with ${MASK}`);
    expect(out).toContain('total (1 host)');
  });
});
