import { describe, expect, it } from 'vitest';
import { createReporter } from '../../../src/report/index.js';
import { MASK } from '../../../src/secrets/secret.js';
import { SECRET_VALUE, runEvents, sink } from './events.fixture.js';

function run(opts: { diff: boolean; verbose?: boolean }) {
  const out = sink();
  const r = createReporter({ mode: 'plain', diff: opts.diff, verbose: opts.verbose, out: out.stream });
  runEvents().forEach((e) => r.emit(e));
  return out.text();
}

describe('plain reporter', () => {
  it('prints one line per result, with changes and failures, then the recap', () => {
    const text = run({ diff: false });
    expect(text).not.toContain('\u001b[');
    const lines = text.split('\n');
    expect(lines[0]).toBe('infra apply -i lab — apply — 3 hosts of lab — run r1');
    expect(text).toContain('PLAY site (3 hosts)');
    expect(lines).toContain('[web22] UNREACHABLE connect ECONNREFUSED 10.0.0.3:22');
    expect(lines).toContain('[web1]  ok       apt.packages nginx');
    expect(lines).toContain('[db1]   changed  files.template /etc/app.env');
    expect(lines).toContain('    mode: 0644 → 0600');
    expect(lines).toContain('[web1]  failed   command.run make');
    expect(lines).toContain('    exit 2: make: *** no rule');
    expect(lines).toContain(`    see log (password ${MASK})`);
    // Skipped tasks and connection chatter only when verbose; no diff without --diff.
    expect(text).not.toContain('skipped  files.line');
    expect(text).not.toContain('connected in');
    expect(text).not.toContain('--- /etc/app.env');
    expect(text).toMatch(/host\s+ok\s+changed\s+failed\s+unreachable\s+skipped\s+time/);
    expect(text).not.toContain(SECRET_VALUE);
  });

  it('prints redacted diffs with --diff, and more with verbose', () => {
    const text = run({ diff: true, verbose: true });
    expect(text).toContain('    --- /etc/app.env (before)');
    expect(text).toContain(`    +password=${MASK}`);
    expect(text).toContain('    -password=old');
    expect(text).toContain('(content hidden: sensitive; new file)');
    expect(text).not.toContain(SECRET_VALUE);
    expect(text).not.toContain('reportKEY');
    expect(text).toContain('[web1]  skipped  files.line /etc/motd (0ms) — tag not selected');
    expect(text).toContain('[db1]   connected in 40 ms');
    expect(text).toContain('[web1]  ok       apt.packages nginx (20ms) — already present at 1.22.1-9');
  });

  it('keeps a command output together under its host', () => {
    const out = sink();
    const r = createReporter({ mode: 'plain', diff: false, out: out.stream });
    r.emit({ type: 'exec.output', host: 'db1', code: 0, stdout: 'one\ntwo\n', stderr: '' });
    r.emit({ type: 'exec.output', host: 'web1', code: 3, stdout: '', stderr: `boom ${SECRET_VALUE}\n` });
    expect(out.text()).toBe(['[db1] exit 0', '[db1] │ one', '[db1] │ two', '[web1] exit 3', `[web1] ! boom ${MASK}`, ''].join('\n'));
  });

  it('falls back to plain lines when tty mode is asked for a stream that is not a terminal', () => {
    const out = sink({ tty: false });
    const r = createReporter({ mode: 'tty', diff: false, out: out.stream });
    runEvents().forEach((e) => r.emit(e));
    expect(out.text()).toContain('[db1]   changed  files.template /etc/app.env');
  });
});
