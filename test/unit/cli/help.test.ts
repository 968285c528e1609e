/** `infra --help` lists every command the CLI registers (one file per command in src/cli/). */
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
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

/** Static (not type-only) imports of a source file, resolved to .ts paths inside src/. */
function staticImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^;'"]*?from\s+'(\.[^']+)'|^import\s+'(\.[^']+)'/gm)) {
    if (m[1]) continue;
    const spec = (m[2] ?? m[3])!;
    out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

describe('start-up', () => {
  it('registering the commands loads no ssh, reporter or run engine (each command imports its engine when it runs)', () => {
    const heavy = ['transport/ssh-connect.ts', 'report/tty.ts', 'engine/run.ts', 'engine/session.ts'].map((f) => join(REPO, 'src', f));
    const seen = new Map<string, string>([[join(REPO, 'src/cli/main.ts'), 'main']]);
    const queue = [join(REPO, 'src/cli/main.ts')];
    while (queue.length) {
      const f = queue.shift()!;
      for (const dep of staticImports(f)) {
        if (seen.has(dep) || !existsSync(dep)) continue;
        seen.set(dep, f);
        queue.push(dep);
      }
    }
    const chain = (f: string): string => (seen.get(f) === 'main' ? 'src/cli/main.ts' : `${chain(seen.get(f)!)} → ${relative(REPO, f)}`);
    expect(heavy.filter((f) => seen.has(f)).map(chain)).toEqual([]);
  });
});
