import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import role, { trustedCas, vars } from '../../../roles/ca-trust/role.js';
import { createCa } from '../../../src/pki/ca.js';
import { UserError } from '../../../src/errors.js';
import { contextFor, fakeInventory } from './context.js';

let dir: string;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function setup(): Promise<{ a: string; b: string }> {
  dir = await mkdtemp(join(tmpdir(), 'infra-catrust-'));
  const a = (await createCa({ commonName: 'A', days: 5 })).certPem;
  const b = (await createCa({ commonName: 'B', days: 5 })).certPem;
  await mkdir(join(dir, 'pki'));
  await mkdir(join(dir, 'extra'));
  await writeFile(join(dir, 'pki', 'ca.crt'), a);
  await writeFile(join(dir, 'extra', 'egress ca.crt'), b);
  await writeFile(join(dir, 'extra', 'bundle.pem'), `# two\n${a}${b}`);
  await writeFile(join(dir, 'extra', 'README'), 'not a certificate');
  return { a, b };
}

describe('ca-trust', () => {
  it('the internal CA, then each certificate of each file (directories: *.crt and *.pem), bundles split', async () => {
    const { a, b } = await setup();
    const cas = trustedCas(vars.parse({ ca_trust_files: ['extra'] }), dir);
    expect(cas.map((c) => c.name)).toEqual(['infra-internal-ca', 'infra-bundle-1', 'infra-bundle-2', 'infra-egress-ca']);
    expect(cas.map((c) => c.pem)).toEqual([a, a, b, b].map((p) => p.trimEnd() + '\n'));
  });

  it('no internal CA when asked not to, or when the inventory has none', async () => {
    await setup();
    expect(trustedCas(vars.parse({ ca_trust_internal: false }), dir)).toEqual([]);
    expect(trustedCas(vars.parse({}), join(dir, 'extra'))).toEqual([]);
  });

  it('a missing path or a file without a certificate is an input error', async () => {
    await setup();
    expect(() => trustedCas(vars.parse({ ca_trust_files: ['nope.crt'] }), dir)).toThrow(UserError);
    expect(() => trustedCas(vars.parse({ ca_trust_files: ['extra/README'] }), dir)).toThrow(/no PEM certificate/);
  });

  it('tasks: ca-certificates, then one tls.caTrust per certificate; nothing when there is none', async () => {
    await setup();
    const inv = { ...fakeInventory({ hosts: { web1: { address: '10.0.0.5' } } }), dir };
    const tasks = role.tasks(contextFor(vars, inv, 'web1', { vars: { ca_trust_files: [join(dir, 'extra', 'egress ca.crt')] } }));
    expect(tasks.map((t) => t.module.name)).toEqual(['apt.packages', 'tls.caTrust', 'tls.caTrust']);
    expect(role.tasks(contextFor(vars, { ...inv, dir: '/nonexistent' }, 'web1'))).toEqual([]);
  });
});
