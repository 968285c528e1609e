/**
 * quote() against hostile strings, proven by a real shell: every quoted value is pasted into
 * `sh -c 'printf %s <quoted>'` and must come back byte for byte, with nothing executed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { quote, raw, sh } from '../../../src/shell/quote.js';
import { Secret } from '../../../src/secrets/secret.js';

/** A scratch cwd: a value that escaped its quotes and ran `touch` would leave a file here. */
const cwd = mkdtempSync(join(tmpdir(), 'infra-quote-'));

/** What `sh` prints for `printf %s <shellText>`: the value the shell saw. */
function shellSees(shellText: string): string {
  return execFileSync('sh', ['-c', `printf %s ${shellText}`], { cwd, encoding: 'utf8' });
}

const hostile: [string, string][] = [
  ['empty string', ''],
  ['single quote', "O'Brien"],
  ['only quotes', `'''`],
  ['double quotes', '"a" "b"'],
  ['command substitution', '$(touch pwned-subst)'],
  ['backticks', '`touch pwned-backtick`'],
  ['variable expansion', '$HOME ${PATH} $0 $$ $1'],
  ['arithmetic', '$((6*7))'],
  ['semicolon and ampersand', 'a; touch pwned-semi & b && c || d'],
  ['pipe and redirections', 'a | b > pwned-redirect < /etc/passwd 2>&1'],
  ['newline', 'line1\nline2\n'],
  ['carriage return and tab', 'a\r\tb'],
  ['leading dash', '-rf'],
  ['double dash option', '--reference=/etc/shadow'],
  ['glob characters', '* ? [a-z] ~ ~root'],
  ['backslashes', 'a\\b\\\\c\\'],
  ['escaped quote attempt', "\\'; touch pwned-escape; echo '"],
  ['unicode', 'héllo ✓ 日本語 🚀'],
  ['right-to-left override', 'abc\u202Edef'],
  ['control characters', '\x01\x07\x1b[2J\x7f'],
  ['spaces only', '   '],
  ['hash (comment)', '# not a comment'],
  ['braces and parens', '{a,b} (x) {}'],
  ['exclamation (history)', '!! !$'],
  ['plain word (unquoted fast path)', 'nginx.service'],
  ['path', '/etc/ssh/sshd_config.d/00-infra.conf'],
  ['safe punctuation', 'a@b%c+d=e:f,g.h/i-j_k'],
  ['high bytes as UTF-8', '\u00ff\u0100'],
];

describe('quote() round-trips through a real sh', () => {
  for (const [name, value] of hostile) {
    it(name, () => {
      expect(shellSees(quote(value))).toBe(value);
    });
  }

  it('nothing was executed along the way', () => {
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('numbers are quoted as their decimal text', () => {
    expect(shellSees(quote(42))).toBe('42');
    expect(shellSees(quote(-1))).toBe('-1');
  });

  it('a value containing NUL is refused (no shell string can hold it)', () => {
    expect(() => quote('a\0b')).toThrow(/NUL/);
  });

  it('a Secret is refused: secrets travel over stdin, never in a command line', () => {
    expect(() => quote(new Secret('hunter2-password'))).toThrow(/stdin/);
  });

  it('a leading dash stays a dash: callers put "--" before operands', () => {
    // Quoting cannot stop option parsing; this documents why every builder writes `--`.
    expect(quote('-rf')).toBe('-rf');
    expect(sh`rm -f -- ${'-rf'}`).toBe('rm -f -- -rf');
  });
});

describe('sh tagged template', () => {
  it('quotes every interpolation, arrays word by word, raw fragments verbatim', () => {
    const words = ["it's", '$(x)', 'plain'];
    const cmd = sh`printf '%s|' ${words} ${raw('"$HOME"')}`;
    const out = execFileSync('sh', ['-c', cmd], { cwd, encoding: 'utf8', env: { HOME: '/home/x' } });
    expect(out).toBe("it's|$(x)|plain|/home/x|");
  });

  it('refuses values it cannot quote', () => {
    expect(() => sh`echo ${{}}`).toThrow(/cannot interpolate/);
    expect(() => sh`echo ${undefined}`).toThrow(/cannot interpolate/);
  });
});
