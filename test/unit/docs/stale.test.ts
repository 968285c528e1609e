/**
 * The committed docs (docs/lab, docs/prod, docs/roles) are what `infra docs` generates now:
 * regenerated in a temp dir and compared byte for byte, so they never drift from the
 * inventories, the playbook and the roles. When this fails, run the commands it names.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeEnvDocs, writeRoleDocs } from '../../../src/docs/generate.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'infra-docs-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function filesOf(dir: string): Promise<Map<string, string>> {
  const names = (await readdir(dir).catch(() => [] as string[])).sort();
  return new Map(await Promise.all(names.map(async (n) => [n, await readFile(join(dir, n), 'utf8')] as const)));
}

async function expectSame(committed: string, fresh: string, command: string): Promise<void> {
  const want = await filesOf(fresh);
  const have = await filesOf(join(REPO, committed));
  expect([...have.keys()], `${committed}/ is not what \`${command}\` writes: run it and commit`).toEqual([...want.keys()]);
  for (const [name, text] of want) expect(have.get(name), `${committed}/${name} is stale: run \`${command}\` and commit`).toBe(text);
}

describe('committed docs are current', () => {
  it.each(['lab', 'prod'])('docs/%s', async (env) => {
    const out = join(tmp, env);
    await writeEnvDocs({ cwd: REPO, inventory: env, out });
    await expectSame(`docs/${env}`, out, `infra docs -i ${env}`);
  });

  it('docs/roles', async () => {
    const out = join(tmp, 'roles');
    await writeRoleDocs({ cwd: REPO, out });
    await expectSame('docs/roles', out, 'infra docs roles');
  });

  it('generating twice without a change writes identical files', async () => {
    const a = join(tmp, 'a');
    const b = join(tmp, 'b');
    await writeEnvDocs({ cwd: REPO, inventory: 'lab', out: a });
    await writeEnvDocs({ cwd: REPO, inventory: 'lab', out: b });
    expect(await filesOf(b)).toEqual(await filesOf(a));
  });
});
