/** `infra --help` lists every command the CLI registers (one file per command in src/cli/). */
import { describe, it, expect } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { infra, REPO } from './run-cli.js';

const NOT_COMMANDS = new Set(['main', 'options', 'process', 'vault-file']); // vault-file: the vault command's own helper
const commandFiles = readdirSync(join(REPO, 'src', 'cli'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .filter((n) => !NOT_COMMANDS.has(n));

describe('infra --help', () => {
  it('lists every command, each with a description', async () => {
    const r = await infra(['--help']);
    expect(r.code).toBe(0);
    const listed = [...r.stdout.matchAll(/^ {2}([a-z]+)\b.*?\s{2,}\S/gm)].map((m) => m[1]);
    const expected = ['apply', 'plan', 'run', 'exec', 'facts', 'inventory', 'check', 'explain', 'lab', 'vault', 'audit', 'pki', 'docs', 'patch', 'drill', 'history', 'rollback'];
    expect(commandFiles.sort()).toEqual([...expected].sort());
    for (const c of expected) expect(listed, c).toContain(c);
  });

  it('inventory --help lists its subcommands', async () => {
    const r = await infra(['inventory', '--help']);
    expect(r.code).toBe(0);
    for (const c of ['list', 'hosts', 'graph']) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
  });

  it('an unknown command exits non-zero and names it', async () => {
    const r = await infra(['aply']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/aply/);
  });
});
