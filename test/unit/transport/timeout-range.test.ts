/**
 * A command's timeout has one documented range, 1s to 24h, on the CLI and in the transport:
 * `--timeout 0` (no limit on the host, "host lost" after 20 s here) and `--timeout 600h`
 * (beyond Node's timer) are input errors, refused before any connection.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from 'commander';
import { commandTimeout, duration } from '../../../src/cli/options.js';
import { infra } from '../cli/run-cli.js';

describe('--timeout', () => {
  it.each([
    ['1s', 1000],
    ['90', 90_000],
    ['10m', 600_000],
    ['24h', 86_400_000],
  ])('%s → %d ms', (v, ms) => {
    expect(commandTimeout(v)).toBe(ms);
  });

  it.each(['0', '0s', '500ms', '24.5h', '600h', '-1', 'soon'])('%s is refused', (v) => {
    expect(() => commandTimeout(v)).toThrow(InvalidArgumentError);
  });

  it('other durations (--lock-wait) may be 0 but not over 24h', () => {
    expect(duration('0')).toBe(0);
    expect(() => duration('600h')).toThrow(/at most 24h/);
  });

  it.each([
    ['0', /a command timeout is 1s to 24h/],
    ['600h', /at most 24h/],
  ])('infra exec --timeout %s exits 2 with the range, before connecting', async (v, why) => {
    const r = await infra(['exec', '-i', 'test/fixtures/cli/explain', '--timeout', v, '--', 'true']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`option '--timeout <duration>' argument '${v}' is invalid`));
    expect(r.stderr).toMatch(why);
  });
});
