/** `infra pki init`: the inventory's internal CA (src/pki/ca.ts). */
import { Option, type Command } from 'commander';
import { basename } from 'node:path';
import { initCa } from '../pki/ca.js';
import { readCertificate, isoDate } from '../pki/certificate.js';
import { loadInventory } from '../inventory/load.js';
import { displayPath } from '../yaml/positions.js';
import { canPrompt, promptHidden } from '../secrets/prompt.js';
import { DEFAULT_VAULT_ID, Keyring, createDecryptor } from '../secrets/vault.js';
import { UserError } from '../errors.js';
import { inventoryOption, positiveInt } from './options.js';

export function register(program: Command): void {
  const pki = program.command('pki').description("the inventory's internal certificate authority (TLS between the hosts)");

  inventoryOption(
    pki
      .command('init')
      .description('create the CA once: pki/ca.crt (commit it) and pki/ca-key.yaml (its key, vault-encrypted) beside hosts.yaml'),
  )
    .option('--name <cn>', 'the CA certificate\'s common name (default "infra <env> CA")')
    .option('--days <n>', 'validity of the CA certificate in days', positiveInt, 3650)
    .addOption(new Option('--vault-id <id>', 'vault id the key is encrypted under').default(DEFAULT_VAULT_ID))
    .action(async (o: { inventory: string; vaultPasswordFile?: string; vaultId: string; name?: string; days: number }) => {
      const keyring = await Keyring.fromSources({
        passwordFile: o.vaultPasswordFile,
        env: process.env,
        ids: [o.vaultId],
        prompt: canPrompt() ? confirmedPassword : undefined,
      });
      const inventory = await loadInventory(o.inventory, { cwd: process.cwd(), decryptor: createDecryptor(keyring) });
      if (!keyring.has(o.vaultId)) {
        throw new UserError(`no vault password for id '${o.vaultId}' to encrypt the CA key with`, {
          hint: 'pass --vault-password-file FILE (or id@FILE), or set INFRA_VAULT_PASSWORD_FILE',
        });
      }
      const name = o.name ?? `infra ${basename(inventory.dir).replace(/[^\w.-]/g, '-')} CA`;
      const r = await initCa(inventory.dir, { commonName: name, days: o.days, keyring, vaultId: o.vaultId });
      const cert = readCertificate(r.certPem)!;
      process.stdout.write(
        [
          `created CA "${name}", valid until ${isoDate(cert.notAfter)}, sha256 ${cert.x509.fingerprint256}`,
          `  ${displayPath(r.certFile)}   the certificate: commit it; clients verify against it`,
          `  ${displayPath(r.keyFile)}   its key, encrypted with vault id '${o.vaultId}': commit it, keep the password safe`,
          '',
        ].join('\n'),
      );
    });
}

async function confirmedPassword(id: string): Promise<string> {
  const first = await promptHidden(`Vault password (${id}): `);
  if ((await promptHidden('Again: ')) !== first) throw new UserError('the two passwords differ');
  return first;
}
