/**
 * `npm run build` (bin/build.mjs) in a copy of the repository: the compiled CLI answers exactly
 * like the sources, runs the shipped roles compiled, and a role from outside the package (a
 * user's repository: TypeScript, compiled into the user's cache, or loaded through tsx when it
 * cannot be) imports the compiled library, not a second copy from the sources. No containers,
 * but slow (a type check and a bundle), so it lives with the integration tests.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
let root: string;
let cacheHome: string;

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

function node(args: string[], opts: { cwd?: string; fromSource?: boolean } = {}): Promise<Out> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      {
        cwd: opts.cwd ?? root,
        env: { ...process.env, CI: '1', NO_COLOR: '1', INFRA_FROM_SOURCE: opts.fromSource ? '1' : '0', XDG_CACHE_HOME: cacheHome },
        timeout: 300_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}
const infra = (args: string[], opts: { cwd?: string; fromSource?: boolean } = {}) => node([join(root, 'bin', 'infra'), ...args], opts);

const OUTSIDE_ROLE = `import { defineRole, z, files, UserError } from 'infra';
export default defineRole({
  name: 'outside',
  vars: z.object({ outside_refuse: z.boolean().default(false) }),
  tasks: ({ vars }) => {
    if (vars.outside_refuse) throw new UserError(\`the outside role refuses (infra is \${import.meta.resolve('infra')})\`, { hint: 'set outside_refuse: false' });
    return [files.line({ path: '/etc/outside', line: 'managed' })];
  },
});
`;

/** A role the cache can compile: no import.meta beyond its own location. */
const cachedRole = (version: string) => `import { defineRole, z, files, UserError } from 'infra';
export default defineRole({
  name: 'cached',
  vars: z.object({ cached_refuse: z.boolean().default(false) }),
  tasks: ({ vars }) => {
    if (vars.cached_refuse) throw new UserError(\`cached role ${version} refuses (\${import.meta.url})\`);
    return [files.line({ path: '/etc/cached', line: 'managed' })];
  },
});
`;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'infra-build-'));
  cacheHome = join(root, 'cache');
  for (const p of ['bin', 'src', 'roles', 'templates', 'inventories', 'playbooks', 'docs', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) {
    cpSync(join(REPO, p), join(root, p), { recursive: true, filter: (src) => !src.includes('/dist') });
  }
  symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
  // A user's repository inside the package (so the sources can resolve 'infra' too).
  const work = join(root, 'work');
  mkdirSync(join(work, 'roles', 'outside'), { recursive: true });
  writeFileSync(join(work, 'roles', 'outside', 'role.ts'), OUTSIDE_ROLE);
  writeFileSync(join(work, 'hosts.yaml'), 'hosts:\n  one: { address: 192.0.2.1 }\ngroups:\n  all: { connection: local }\n');
  writeFileSync(join(work, 'site.yaml'), '- hosts: all\n  roles: [outside]\n');
  mkdirSync(join(work, 'roles', 'cached'), { recursive: true });
  writeFileSync(join(work, 'roles', 'cached', 'role.ts'), cachedRole('v1'));
  writeFileSync(join(work, 'cached.yaml'), '- hosts: all\n  roles: [cached]\n');
  const build = await node([join(root, 'bin', 'build.mjs')]);
  expect(build, build.stderr + build.stdout).toMatchObject({ code: 0 });
}, 600_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('the compiled build', () => {
  it('writes dist/ with its stamp and the shipped roles compiled', () => {
    for (const f of ['dist/package.json', 'dist/src/cli/main.js', 'dist/src/index.js', 'dist/roles/hardening/role.js', 'dist/roles/postgres/files/pgdg.asc']) {
      expect(existsSync(join(root, f)), f).toBe(true);
    }
    expect(existsSync(join(root, 'dist.new'))).toBe(false);
  });

  it.each([
    [['--help']],
    [['check', '-i', 'prod']],
    [['check', '-i', 'lab']],
    [['explain', 'redis_port', '-i', 'lab', '--host', 'redis1', '--role', 'redis-sentinel']],
  ])('infra %j answers exactly like the sources', async (args) => {
    const [compiled, source] = await Promise.all([infra(args), infra(args, { fromSource: true })]);
    expect(compiled).toEqual(source);
  }, 120_000);

  it("a role outside the package loads through tsx and imports the compiled library (one copy)", async () => {
    const cwd = join(root, 'work');
    const ok = await infra(['check', 'site.yaml', '-i', 'hosts.yaml'], { cwd });
    expect(ok).toMatchObject({ code: 0, stdout: 'ok: 1 hosts in hosts.yaml, 1 plays over 1 hosts, 1 roles, 0 templates\n' });
    const refused = await infra(['check', 'site.yaml', '-i', 'hosts.yaml', '-e', '{"outside_refuse": true}'], { cwd });
    expect(refused.code, refused.stderr).toBe(2);
    // One copy of the library: the compiled one the CLI runs, not the sources beside it.
    expect(refused.stderr).toContain(`the outside role refuses (infra is file://${join(root, 'dist', 'src', 'index.js')})`);
    const fromSource = await infra(['check', 'site.yaml', '-i', 'hosts.yaml', '-e', '{"outside_refuse": true}'], { cwd, fromSource: true });
    expect(fromSource.stderr).toContain(`(infra is file://${join(root, 'src', 'index.ts')})`);
  }, 120_000);

  it("a user's role is compiled once into the user's cache, imports the compiled library, and an edit is seen", async () => {
    const cwd = join(root, 'work');
    const refuse = ['check', 'cached.yaml', '-i', 'hosts.yaml', '-e', '{"cached_refuse": true}'];
    const ok = await infra(['check', 'cached.yaml', '-i', 'hosts.yaml'], { cwd });
    expect(ok).toMatchObject({ code: 0, stdout: 'ok: 1 hosts in hosts.yaml, 1 plays over 1 hosts, 1 roles, 0 templates\n' });
    const entries = readdirSync(join(cacheHome, 'infra', 'roles'));
    expect(entries).toHaveLength(1);
    // Exit 2: the role's UserError is the CLI's own class (one copy of the library); its
    // import.meta.url is still the source file's.
    const v1 = await infra(refuse, { cwd });
    expect(v1.code, v1.stderr).toBe(2);
    expect(v1.stderr).toContain(`cached role v1 refuses (file://${join(cwd, 'roles', 'cached', 'role.ts')})`);
    writeFileSync(join(cwd, 'roles', 'cached', 'role.ts'), cachedRole('v2'));
    const v2 = await infra(refuse, { cwd });
    expect(v2.stderr).toContain('cached role v2 refuses');
    expect(readdirSync(join(cacheHome, 'infra', 'roles'))).toEqual(entries);
  }, 120_000);

  it('an edit to a source file after the build runs the sources (a stale build is never used)', async () => {
    const main = join(root, 'src', 'cli', 'main.ts');
    utimesSync(main, new Date(), new Date()); // touched: newer than the build
    // A broken compiled entry point would fail if it were still used.
    writeFileSync(join(root, 'dist', 'src', 'cli', 'main.js'), 'throw new Error("stale build used");\n');
    const r = await infra(['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: infra');
  }, 120_000);
});
