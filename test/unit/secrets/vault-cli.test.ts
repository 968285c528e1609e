import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { parse } from 'yaml';
import { VAULT_TAGS } from '../../../src/yaml/positions.js';
import { editInRam } from '../../../src/secrets/edit-session.js';

const runner = resolve(__dirname, 'helpers/vault-cli.ts');
const tsx = resolve(__dirname, '../../../node_modules/.bin/tsx');
const dir = mkdtempSync(join(tmpdir(), 'infra-vault-cli-'));
const pwFile = join(dir, 'pw');
const otherPw = join(dir, 'pw2');

function infra(args: string[], opts: { input?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(tsx, [runner, 'vault', '--vault-password-file', pwFile, ...args], {
    input: opts.input ?? '',
    encoding: 'utf8',
    env: { ...process.env, INFRA_VAULT_PASSWORD_FILE: '', ...opts.env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
/** An "editor" that records the path it was given, then exits with `code`. */
function recordingEditor(name: string, code: number): { editor: string; seenDir: () => string } {
  const seen = join(dir, `${name}.seen`);
  const editor = join(dir, `${name}.sh`);
  writeFileSync(editor, `#!/bin/sh\necho "$1" > '${seen}'\nexit ${code}\n`, { mode: 0o755 });
  return { editor, seenDir: () => dirname(readFileSync(seen, 'utf8').trim()) };
}

beforeAll(() => {
  writeFileSync(pwFile, 'cli-test-password\n');
  writeFileSync(otherPw, 'another-password\n');
});

describe('infra vault (CLI)', () => {
  it('encrypt-string --stdin prints a !vault line that decrypt reads back', () => {
    const r = infra(['encrypt-string', '--name', 'db.password', '--vault-id', 'prod', '--stdin'], { input: 'canary-77-cli\n' });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^!vault \$INFRA;1;prod;scrypt:N=32768:r=8:p=1;\S+\n$/);
    const file = join(dir, 'one.yaml');
    writeFileSync(file, `db:\n  password: ${r.stdout}`);
    const d = infra(['decrypt', file]);
    expect(d.code).toBe(0);
    expect(d.stdout).toBe('db:\n  password: "canary-77-cli"\n');
    expect(readFileSync(file, 'utf8')).not.toContain('canary-77-cli'); // never decrypted in place
  });

  it('encrypt FILE in place, then a wrong password exits 2 without plaintext', () => {
    const file = join(dir, 'two.yaml');
    writeFileSync(file, '# comment\nuser: app-user\npassword: !encrypt canary-88-cli\n', { mode: 0o640 });
    const r = infra(['encrypt', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('encrypted 1 value(s) (password)');
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^# comment\nuser: app-user\npassword: !vault \$INFRA;1;default;\S+\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o640);
    const bad = spawnSync(tsx, [runner, 'vault', '--vault-password-file', otherPw, 'decrypt', file], { encoding: 'utf8', env: { ...process.env, INFRA_VAULT_PASSWORD_FILE: '' } });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/two\.yaml:3:11: cannot decrypt password: wrong vault password for id 'default'/);
    expect(bad.stdout + bad.stderr).not.toContain('canary-88-cli');
  });

  it('edit: plaintext only in /dev/shm, unchanged values keep their ciphertext, new !encrypt values are encrypted', () => {
    const file = join(dir, 'three.yaml');
    writeFileSync(file, 'a: first-value\nb: second-value\nport: 80\n');
    expect(infra(['encrypt', file, '--key', 'a,b']).code).toBe(0);
    const before = readFileSync(file, 'utf8').split('\n');
    const seen = join(dir, 'seen.txt');
    const editor = join(dir, 'editor.sh');
    // The "editor": records what it was shown and where, changes b, adds c.
    writeFileSync(
      editor,
      `#!/bin/sh\nset -e\n{ echo "$1"; stat -c %a "$1"; cat "$1"; } > '${seen}'\n` +
        `sed -i 's/second-value/changed-value/' "$1"\nprintf 'c: !encrypt added-value\\n' >> "$1"\n`,
    );
    chmodSync(editor, 0o755);
    const r = infra(['edit', file], { env: { EDITOR: editor, VISUAL: '' } });
    expect(r.stderr).toBe(`${file}: encrypted 2 value(s) (b, c), 1 unchanged\n`);
    expect(r.code).toBe(0);
    const [path, mode, ...shown] = readFileSync(seen, 'utf8').split('\n');
    expect(path).toMatch(/^\/dev\/shm\/infra-vault-\w+\/three\.yaml$/);
    expect(mode).toBe('600');
    expect(shown.join('\n')).toBe('a: !encrypt "first-value"\nb: !encrypt "second-value"\nport: 80\n');
    const after = readFileSync(file, 'utf8').split('\n');
    expect(after[0]).toBe(before[0]); // a unchanged: same ciphertext
    expect(after[1]).not.toBe(before[1]);
    expect(after[2]).toBe('port: 80');
    expect(after[3]).toMatch(/^c: !vault \$INFRA;1;default;/);
    expect(existsSync(dirname(path))).toBe(false);
    const d = infra(['decrypt', file]);
    expect(parse(d.stdout, { customTags: VAULT_TAGS })).toEqual({ a: 'first-value', b: 'changed-value', port: 80, c: 'added-value' });
  });

  it('edit with no change leaves the file untouched; a failing editor leaves it too, and no plaintext behind', () => {
    const file = join(dir, 'four.yaml');
    writeFileSync(file, 'a: !encrypt untouched-value\n');
    infra(['encrypt', file]);
    const before = readFileSync(file, 'utf8');
    const noop = recordingEditor('noop', 0);
    expect(infra(['edit', file], { env: { EDITOR: noop.editor, VISUAL: '' } }).stderr).toBe(`${file}: no changes\n`);
    expect(noop.seenDir()).toMatch(/^\/dev\/shm\/infra-vault-/);
    expect(existsSync(noop.seenDir())).toBe(false);
    const crash = recordingEditor('crash', 3);
    const failed = infra(['edit', file], { env: { EDITOR: crash.editor, VISUAL: '' } });
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain('failed with exit code 3');
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(existsSync(crash.seenDir())).toBe(false);
  });

  it('rekey: the new password decrypts, the old no longer does', () => {
    const file = join(dir, 'five.yaml');
    writeFileSync(file, 'x: !encrypt rekey-value\n');
    infra(['encrypt', file]);
    const r = infra(['rekey', file, '--new-vault-password-file', otherPw]);
    expect(r.code).toBe(0);
    expect(infra(['decrypt', file]).code).toBe(2);
    const ok = spawnSync(tsx, [runner, 'vault', '--vault-password-file', otherPw, 'decrypt', file], { encoding: 'utf8', env: { ...process.env, INFRA_VAULT_PASSWORD_FILE: '' } });
    expect(ok.stdout).toBe('x: "rekey-value"\n');
  });

  it('edit: a missing password for new values is reported before the editor opens', () => {
    const file = join(dir, 'six.yaml');
    writeFileSync(file, 'a: 1\n');
    // Only a password for 'lab' is given; new values are asked to go under 'prod'.
    const bound = spawnSync(tsx, [runner, 'vault', '--vault-password-file', `lab@${pwFile}`, '--vault-id', 'prod', 'edit', file], {
      encoding: 'utf8',
      env: { ...process.env, INFRA_VAULT_PASSWORD_FILE: '', EDITOR: join(dir, 'must-not-run.sh') },
    });
    expect(bound.status).toBe(2);
    expect(bound.stderr).toContain("no vault password for id 'prod' (for the values to encrypt)");
    expect(bound.stderr).not.toContain('must-not-run');
  });

  it('refuses to edit without a RAM file system', () => {
    expect(() => editInRam('f.yaml', 'a: b\n', { editor: 'true', tmpfsDir: join(dir, 'no-such-dir'), retry: false, accept: () => undefined })).toThrow(
      /no-such-dir is missing: refusing to write decrypted values to a persistent disk/,
    );
  });
});
