/**
 * ca-trust: the CA certificates every host must trust, in its system trust store (what
 * curl, apt, npm, Python, Go and OpenSSL-based clients read): the inventory's internal CA
 * (pki/ca.crt, from `infra pki init`), so hosts verify each other's TLS, and extra CAs read
 * from files on the controller (a TLS-intercepting egress proxy, a corporate CA).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';
import { defineRole, z, apt, tls, UserError, CA_CERT_FILE } from 'infra';

export const vars = z.object({
  ca_trust_internal: z.boolean().default(true).describe("Trust the inventory's own CA (pki/ca.crt) when `infra pki init` made one"),
  ca_trust_files: z.array(z.string().min(1)).default([]).describe('PEM files or directories (each *.crt / *.pem in them) on the controller; relative to the inventory'),
});

export interface TrustedCa {
  /** File name on the host: /usr/local/share/ca-certificates/<name>.crt */
  name: string;
  pem: string;
  /** Where it was read, for messages. */
  source: string;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Every CA certificate the host must trust, one per certificate (bundles are split). */
export function trustedCas(v: z.output<typeof vars>, inventoryDir: string): TrustedCa[] {
  const out: TrustedCa[] = [];
  const internal = join(inventoryDir, CA_CERT_FILE);
  if (v.ca_trust_internal && existsSync(internal)) out.push(...certificatesIn(internal, 'infra-internal-ca'));
  for (const entry of v.ca_trust_files) {
    const path = isAbsolute(entry) ? entry : resolve(inventoryDir, entry);
    if (!existsSync(path)) {
      throw new UserError(`ca_trust_files: ${path} does not exist on this machine`, {
        hint: 'give PEM files or directories of them on the controller (relative paths: from the inventory directory)',
      });
    }
    const files = statSync(path).isDirectory()
      ? readdirSync(path).filter((f) => ['.crt', '.pem'].includes(extname(f))).sort().map((f) => join(path, f))
      : [path];
    for (const f of files) out.push(...certificatesIn(f, `infra-${basename(f, extname(f)).replace(/[^A-Za-z0-9_.-]/g, '-')}`));
  }
  const names = new Set<string>();
  return out.filter((c) => !names.has(c.name) && names.add(c.name));
}

function certificatesIn(file: string, name: string): TrustedCa[] {
  const blocks = readFileSync(file, 'utf8').match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw new UserError(`${file} holds no PEM certificate`, { hint: 'ca_trust_files takes PEM files (-----BEGIN CERTIFICATE-----)' });
  return blocks.map((pem, i) => ({ name: blocks.length > 1 ? `${name}-${i + 1}` : name, pem: `${pem}\n`, source: file }));
}

export default defineRole({
  name: 'ca-trust',
  vars,
  tasks: ({ vars: v, inventory }) => {
    const cas = trustedCas(v, inventory.dir);
    if (cas.length === 0) return [];
    return [
      apt.packages({ names: ['ca-certificates'] }),
      ...cas.map((ca) => tls.caTrust({ name: ca.name, certificate: ca.pem })),
    ];
  },
});
