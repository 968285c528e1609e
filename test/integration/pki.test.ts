/**
 * Issue 11 end to end through the real CLI, a bastion and two targets: `infra pki init`, then
 * a playbook with tls.certificate gives both targets certificates that `openssl verify`
 * accepts; a second apply changes nothing (and needs no vault password: the CA key is only
 * decrypted to sign); a certificate within renew_before is re-issued and the plan says why;
 * check mode generates no key; a new CA re-issues everything. The ca-trust role makes the
 * targets trust the internal CA (TLS between them verifies with no CA file) and this
 * machine's egress CA (curl and npm reach the npm registry). The CA key's PEM lines never
 * show in any output, plan file, audit log, or anywhere on the hosts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFile, rename, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startFleet, type Fleet } from './fleet.js';
import { infra, taskResults, REPO, type CliResult, cliWorkspace } from './helpers/cli.js';

const PLAYBOOK = join(REPO, 'test/fixtures/playbooks/pki/tls.yaml');
const TARGETS = ['target1', 'target2'];

let fleet: Fleet;
let work: string;
let env: Record<string, string>;
/** Every run's output, for the canary at the end. */
const outputs: string[] = [];

async function cli(args: string[], opts: { env?: Record<string, string> } = {}): Promise<CliResult> {
  const r = await infra(args, { env: opts.env ?? env, timeoutMs: 600_000 });
  outputs.push(r.stdout, r.stderr);
  return r;
}

const sh = (host: string, cmd: string): Promise<string> => fleet.sh(host, cmd);

const apply = (...extra: string[]) => cli(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json', ...extra]);
const certTask = (r: CliResult, host: string) => taskResults(r, host).find((e) => e.module === 'tls.certificate')!;
const serial = (host: string) => sh(host, 'openssl x509 -noout -serial -in /etc/infra-tls/server.crt');

beforeAll(async () => {
  ({ work, env } = await cliWorkspace('pki-it', 'pki integration password'));
  fleet = await startFleet({ targets: 2 }).catch(() => startFleet({ targets: 2 }));
}, 300_000);

afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('infra pki init', () => {
  it('creates the CA: the certificate in clear, the key vault-encrypted', async () => {
    const r = await cli(['pki', 'init', '-i', fleet.inventoryDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/created CA "infra infra-fleet-\w+ CA", valid until \d{4}-/);
    expect(await readFile(join(fleet.inventoryDir, 'pki/ca-key.yaml'), 'utf8')).toMatch(/^ca_key: !vault \$INFRA;1;default;/m);
    const again = await cli(['pki', 'init', '-i', fleet.inventoryDir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already has a CA/);
  });
});

describe('tls.certificate', () => {
  let first: CliResult;
  beforeAll(async () => {
    first = await apply();
  }, 600_000);

  it('gives each target a key made on the host and a certificate openssl verifies against the CA', async () => {
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const caPem = await readFile(join(fleet.inventoryDir, 'pki/ca.crt'), 'utf8');
    for (const t of fleet.targets) {
      const task = certTask(first, t.name);
      expect(task.status).toBe('changed');
      expect(task.changes.map((c) => c.what)).toEqual(['generate key on the host', 'issue certificate', 'write CA certificate /etc/infra-tls/ca.crt']);
      expect(await sh(t.name, 'openssl verify -CAfile /etc/infra-tls/ca.crt /etc/infra-tls/server.crt')).toBe('/etc/infra-tls/server.crt: OK\n');
      expect(await sh(t.name, 'cat /etc/infra-tls/ca.crt')).toBe(caPem);
      const text = await sh(t.name, 'openssl x509 -noout -subject -ext subjectAltName -in /etc/infra-tls/server.crt');
      expect(text).toContain(`subject=CN = ${t.name}`);
      expect(text).toContain(`DNS:${t.name}, DNS:tls.internal, IP Address:${t.ip}`);
      expect(await sh(t.name, 'stat -c "%a %U %G" /etc/infra-tls/server.key /etc/infra-tls/server.crt')).toBe('640 root adm\n644 root adm\n');
      // The certificate is for the key on the host.
      const pub = await sh(t.name, 'openssl pkey -pubout -in /etc/infra-tls/server.key; openssl x509 -noout -pubkey -in /etc/infra-tls/server.crt');
      const [a, b] = pub.split('-----END PUBLIC KEY-----\n');
      expect(a).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
      expect(a).toBe(b);
    }
  });

  it('a second apply changes nothing, and needs no vault password', async () => {
    const { INFRA_VAULT_PASSWORD_FILE: _dropped, ...noPassword } = env;
    const r = await cli(['apply', PLAYBOOK, '-i', fleet.inventoryDir, '--json'], { env: noPassword });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.changed).toBe(0);
    expect(certTask(r, 'target1').reason).toMatch(/^valid until \d{4}-\d\d-\d\d, CN=target1, DNS:target1 DNS:tls\.internal IP:[\d.]+, issued by CN=infra /);
    const plan = await cli(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--detailed-exitcode'], { env: noPassword });
    expect(plan.code, plan.stdout).toBe(0);
  });

  it('a certificate within renew_before is re-issued (same key), and the plan says why', async () => {
    const before = await serial('target1');
    const planFile = join(work, 'renew-plan.json');
    // A year-long certificate is within 400 days of its end (validity must exceed renewBefore).
    const plan = await cli(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '-e', 'renew_before=400d', '-e', 'validity=730d', '--out', planFile]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/issue certificate: expires \d{4}-\d\d-\d\d, within renew_before 400d → CN=target1, DNS:target1 DNS:tls\.internal IP:/);
    outputs.push(await readFile(planFile, 'utf8'));
    const keyBefore = await sh('target1', 'sha256sum /etc/infra-tls/server.key');
    const r = await cli(['apply', planFile, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(certTask(r, 'target1').changes).toEqual([
      expect.objectContaining({ what: 'issue certificate', from: expect.stringMatching(/within renew_before 400d$/) }),
    ]);
    expect(await serial('target1')).not.toBe(before);
    expect(await sh('target1', 'sha256sum /etc/infra-tls/server.key')).toBe(keyBefore);
    expect(await sh('target1', 'openssl verify -CAfile /etc/infra-tls/ca.crt /etc/infra-tls/server.crt')).toMatch(/OK/);
    expect((await apply()).changed).toBe(0);
  });

  it('check mode generates no key; apply makes a new one and re-issues', async () => {
    await sh('target2', 'rm /etc/infra-tls/server.key');
    const check = await apply('--check');
    expect(check.code).toBe(0);
    expect(certTask(check, 'target2').changes.map((c) => c.what)).toEqual(['generate key on the host', 'issue certificate']);
    expect(certTask(check, 'target2').changes[1].from).toBe('no key: a new one is generated on the host');
    expect((await fleet.exec('target2', 'test -e /etc/infra-tls/server.key')).code).toBe(1);
    expect(await sh('target2', 'ls -a /etc/infra-tls')).not.toMatch(/infra-key/);
    const r = await apply();
    expect(r.code).toBe(0);
    expect(await sh('target2', 'openssl verify -CAfile /etc/infra-tls/ca.crt /etc/infra-tls/server.crt')).toMatch(/OK/);
    expect((await apply()).changed).toBe(0);
  });

  it('a new CA re-issues every certificate: "issued by another CA"', async () => {
    const pki = join(fleet.inventoryDir, 'pki');
    await rename(pki, join(work, 'old-pki'));
    expect((await cli(['pki', 'init', '-i', fleet.inventoryDir, '--name', 'second CA'])).code).toBe(0);
    const plan = await cli(['plan', PLAYBOOK, '-i', fleet.inventoryDir, '--json']);
    for (const t of TARGETS) expect(certTask(plan, t).changes.find((c) => c.what === 'issue certificate')?.from).toMatch(/^issued by another CA \(CN=infra infra-fleet-\w+ CA\)$/);
    const r = await apply();
    expect(r.code).toBe(0);
    for (const t of TARGETS) expect(await sh(t, 'openssl x509 -noout -issuer -in /etc/infra-tls/server.crt')).toBe('issuer=CN = second CA\n');
    expect((await apply()).changed).toBe(0);
  });
});

describe('role ca-trust', () => {
  const registry = (host: string) => fleet.exec(host, 'curl -sS -m 30 -o /dev/null -w "%{http_code}" https://registry.npmjs.org/pm2');

  beforeAll(async () => {
    await mkdir(join(fleet.inventoryDir, 'group_vars'), { recursive: true });
    await writeFile(join(fleet.inventoryDir, 'group_vars', 'all.yaml'), 'ca_trust_files: [/usr/local/share/ca-certificates]\n');
  });

  it('before it, the egress CA is not trusted: curl to the npm registry fails verification', async () => {
    const r = await registry('target1');
    expect(r.code, r.stdout + r.stderr).toBe(60); // CURLE_PEER_FAILED_VERIFICATION
  });

  it('trusts the internal CA and the controller\'s CAs; a second run changes nothing', async () => {
    const r = await cli(['run', 'ca-trust', '-i', fleet.inventoryDir, '-l', 'targets', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const names = taskResults(r, 'target1').filter((e) => e.module === 'tls.caTrust').map((e) => e.task);
    expect(names.some((n) => n.includes('infra-internal-ca'))).toBe(true);
    expect(names.length).toBeGreaterThan(1);
    const again = await cli(['run', 'ca-trust', '-i', fleet.inventoryDir, '-l', 'targets', '--json']);
    expect(again.changed).toBe(0);
  }, 300_000);

  it('curl reaches the npm registry through the egress', async () => {
    const r = await registry('target1');
    expect(r.stdout, r.stderr).toBe('200');
  });

  it('TLS between the hosts verifies against the system store: no CA file given', async () => {
    const [t1, t2] = fleet.targets;
    await sh('target2', 'cd /tmp && (setsid openssl s_server -quiet -www -accept 8443 -cert /etc/infra-tls/server.crt -key /etc/infra-tls/server.key >/dev/null 2>&1 &) ; sleep 1');
    const ok = await fleet.exec('target1', `curl -sS -m 10 -o /dev/null -w "%{http_code}" https://${t2.ip}:8443/`);
    expect(ok.stdout, ok.stderr).toBe('200');
    const byName = await fleet.exec('target1', `curl -sS -m 10 -o /dev/null -w "%{http_code}" --resolve tls.internal:8443:${t2.ip} https://tls.internal:8443/`);
    expect(byName.stdout, byName.stderr).toBe('200');
    // A name the certificate does not carry is refused.
    const wrong = await fleet.exec('target1', `curl -sS -m 10 -o /dev/null --resolve other.internal:8443:${t2.ip} https://other.internal:8443/`);
    expect(wrong.code).toBe(60);
    expect(t1.ip).not.toBe(t2.ip);
  });

  it('npm view pm2 version works on the host', async () => {
    const started = Date.now();
    await sh('target1', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null');
    const installed = Date.now();
    const r = await fleet.exec('target1', 'npm view pm2 version');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    console.log(`npm: installed in ${((installed - started) / 1000).toFixed(1)} s; npm view pm2 version → ${r.stdout.trim()}`);
  }, 600_000);
});

describe('the CA key never shows', () => {
  it('not in any output, plan file or audit log, and nowhere on the hosts', async () => {
    // Both CAs' keys (the first one was replaced above).
    const lines: string[] = [];
    for (const file of [join(work, 'old-pki/ca-key.yaml'), join(fleet.inventoryDir, 'pki/ca-key.yaml')]) {
      const r = await infra(['vault', 'decrypt', file], { env });
      expect(r.code).toBe(0);
      const body = /-----BEGIN PRIVATE KEY-----\n([\s\S]*?)-----END PRIVATE KEY-----/.exec(r.stdout.replace(/^ +/gm, ''))![1];
      lines.push(...body.split('\n').filter((l) => l.length >= 16));
    }
    expect(lines.length).toBeGreaterThanOrEqual(4);
    const audit = await readFile(join(work, 'state', 'infra', 'audit.jsonl'), 'utf8');
    expect(audit.length).toBeGreaterThan(0);
    const everything = [...outputs, audit].join('\n');
    for (const l of lines) expect(everything.includes(l), `a CA key line appeared in output`).toBe(false);
    await writeFile(join(work, 'needles'), lines.join('\n') + '\n');
    for (const host of ['bastion', ...TARGETS]) {
      const needles = await readFile(join(work, 'needles'), 'utf8');
      const r = await fleet.exec(host, `printf '%s' '${needles}' > /tmp/.needles && grep -rIlF -f /tmp/.needles /etc /var /tmp /root /home /run --exclude=.needles 2>/dev/null; rm -f /tmp/.needles`);
      expect(r.stdout, `${host} holds a CA key line`).toBe('');
    }
  });
});
