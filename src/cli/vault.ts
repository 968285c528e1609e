/**
 * `infra vault ...`: per-value encryption of vars files (format: src/secrets/envelope.ts).
 * Plaintext only ever goes to stdout, a pager, or an editor's file in RAM (/dev/shm).
 */
import { Command, Option } from 'commander';
import { readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { UserError } from '../errors.js';
import { Keyring, DEFAULT_VAULT_ID, encryptValue, vaultIdsIn } from '../secrets/vault.js';
import { canPrompt, promptHidden } from '../secrets/prompt.js';
import { parseVarsFile, decryptText, encryptText, rekeyText, envelopesOf, type EncryptResult } from './vault-file.js';
import { VAULT_TAG } from '../yaml/positions.js';
import { editInRam, defaultEditor, writeFileAtomic } from '../secrets/edit-session.js';

interface VaultOptions {
  vaultPasswordFile?: string[];
  vaultId: string;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export function register(program: Command): void {
  const vault = program
    .command('vault')
    .description('encrypt, decrypt, view, edit and rekey !vault values in YAML vars files')
    .option('--vault-password-file <file>', 'password file: FILE, or id@FILE (repeatable; also INFRA_VAULT_PASSWORD_FILE)', collect)
    .addOption(new Option('--vault-id <id>', 'vault id for new values').default(DEFAULT_VAULT_ID));

  vault
    .command('encrypt-string')
    .description('encrypt one value for a key path; prints "!vault ..." to paste after the key')
    .requiredOption('--name <keypath>', 'dotted key path the value will live at (e.g. db.password): it is bound into the ciphertext')
    .option('--stdin', 'read the value from stdin (one trailing newline is dropped)')
    .option('--keep-trailing-newline', 'with --stdin: keep the trailing newline (PEM keys)')
    .argument('[value]', 'the value (visible in shell history and the process list: prefer --stdin or the prompt)')
    .action(async (value: string | undefined, _o, cmd: Command) => {
      const o = cmd.optsWithGlobals<VaultOptions & { name: string; stdin?: boolean; keepTrailingNewline?: boolean }>();
      const { keyring, vaultId } = await keyringForNewValues(cmd, o, '', { confirm: true });
      const plain = await valueToEncrypt(value, o);
      process.stdout.write(`${VAULT_TAG} ${encryptValue(plain, o.name, keyring, vaultId)}\n`);
    });

  vault
    .command('encrypt')
    .description('encrypt values of a vars file in place: --key paths, else the !encrypt-tagged values, else every string value')
    .argument('<file>', 'YAML vars file')
    .option('-k, --key <keypath>', 'only this dotted key path (repeatable, or comma-separated)', (v: string, p: string[] = []) => [...p, ...v.split(',')])
    .action(async (file: string, _o, cmd: Command) => {
      const o = cmd.optsWithGlobals<VaultOptions & { key?: string[] }>();
      const f = parseVarsFile(readText(file), file);
      const { keyring, vaultId } = await keyringForNewValues(cmd, o, f.text, { confirm: true });
      const r = encryptText(f, keyring, { vaultId, keys: o.key });
      if (r.text !== f.text) writeFileAtomic(file, r.text);
      summarize(file, r);
    });

  vault
    .command('decrypt')
    .description('print the file with every !vault value decrypted (to stdout; the file is not changed)')
    .argument('<file>', 'YAML vars file')
    .action(async (file: string, _o, cmd: Command) => {
      process.stdout.write(await decrypted(file, cmd.optsWithGlobals<VaultOptions>()));
    });

  vault
    .command('view')
    .description('show the file decrypted, through $PAGER on a terminal')
    .argument('<file>', 'YAML vars file')
    .action(async (file: string, _o, cmd: Command) => {
      const text = await decrypted(file, cmd.optsWithGlobals<VaultOptions>());
      if (!process.stdout.isTTY) return void process.stdout.write(text);
      const pager = process.env.PAGER || 'less';
      const r = spawnSync('/bin/sh', ['-c', pager], { input: text, stdio: ['pipe', 'inherit', 'inherit'] });
      if (r.error || r.status !== 0) process.stdout.write(text);
    });

  vault
    .command('edit')
    .description('edit the file with its !vault values decrypted (in RAM, /dev/shm), re-encrypt on save')
    .argument('<file>', 'YAML vars file (created if missing)')
    .action(async (file: string, _o, cmd: Command) => {
      const o = cmd.optsWithGlobals<VaultOptions>();
      const original = existsSync(file) ? readText(file) : '';
      const before = parseVarsFile(original, file);
      const { keyring, vaultId } = await keyringForNewValues(cmd, o, original, { confirm: !original });
      const buffer = decryptText(before, keyring, { mark: true }).text;
      let result: EncryptResult | undefined;
      const edited = editInRam(file, buffer, {
        editor: defaultEditor(),
        retry: !!process.stdin.isTTY,
        accept(text) {
          try {
            result = encryptText(parseVarsFile(text, file), keyring, { vaultId, select: 'marked', previous: envelopesOf(before) });
            return undefined;
          } catch (e) {
            if (e instanceof UserError) return e.format();
            throw e;
          }
        },
      });
      if (edited === buffer || !result || result.text === original) return void process.stderr.write(`${file}: no changes\n`);
      writeFileAtomic(file, result.text);
      summarize(file, result);
    });

  vault
    .command('rekey')
    .description('re-encrypt every !vault value of a file under new passwords (same vault ids)')
    .argument('<file>', 'YAML vars file')
    .option('--new-vault-password-file <file>', 'new password file: FILE, or id@FILE (repeatable)', collect)
    .action(async (file: string, _o, cmd: Command) => {
      const o = cmd.optsWithGlobals<VaultOptions & { newVaultPasswordFile?: string[] }>();
      const f = parseVarsFile(readText(file), file);
      const ids = vaultIdsIn(f.text);
      const oldRing = await keyringFor(o, ids, { confirm: false });
      const newRing = await Keyring.fromSources({
        passwordFile: o.newVaultPasswordFile,
        ids,
        prompt: canPrompt() ? confirmed((id) => `New vault password (${id}): `) : undefined,
      });
      const r = rekeyText(f, oldRing, newRing);
      if (r.text !== f.text) writeFileAtomic(file, r.text);
      process.stderr.write(`${file}: re-encrypted ${r.keyPaths.length} value(s)\n`);
    });
}

/**
 * The keyring and the vault id new values get: --vault-id when given; else the file's only
 * id; else the only id a password was given for; else "default". Checked before any
 * editing starts, so no typed change is lost to a missing password.
 */
async function keyringForNewValues(cmd: Command, o: VaultOptions, text: string, { confirm }: { confirm: boolean }): Promise<{ keyring: Keyring; vaultId: string }> {
  const explicit = cmd.parent?.getOptionValueSource('vaultId') === 'cli' ? o.vaultId : undefined;
  const existing = vaultIdsIn(text);
  const known = explicit ?? (existing.length === 1 ? existing[0] : undefined);
  const ids = [...new Set([...existing, ...(known ? [known] : [])])];
  const keyring = await keyringFor(o, ids.length ? ids : undefined, { confirm });
  const only = keyring.ids().length === 1 && !keyring.hasFallback() ? keyring.ids()[0] : undefined;
  const vaultId = known ?? only ?? DEFAULT_VAULT_ID;
  if (!keyring.has(vaultId)) {
    throw new UserError(`no vault password for id '${vaultId}' (for the values to encrypt)`, {
      hint: `pass --vault-password-file FILE (or ${vaultId}@FILE), set INFRA_VAULT_PASSWORD_FILE, or choose an id with --vault-id`,
    });
  }
  return { keyring, vaultId };
}

async function decrypted(file: string, o: VaultOptions): Promise<string> {
  const f = parseVarsFile(readText(file), file);
  const keyring = await keyringFor(o, vaultIdsIn(f.text), { confirm: false });
  return decryptText(f, keyring, { mark: false }).text;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** Password files first; on a terminal, ask for the ids still missing (twice when encrypting). */
function keyringFor(o: VaultOptions, ids: string[] | undefined, { confirm }: { confirm: boolean }): Promise<Keyring> {
  const question = (id: string) => `Vault password (${id}): `;
  const prompt = canPrompt() ? (confirm ? confirmed(question) : (id: string) => promptHidden(question(id))) : undefined;
  return Keyring.fromSources({ passwordFile: o.vaultPasswordFile, env: process.env, prompt, ids });
}

/** A typo in a new password would lock the value away: ask twice. */
function confirmed(question: (id: string) => string): (id: string) => Promise<string> {
  return async (id) => {
    const first = await promptHidden(question(id));
    const again = await promptHidden(`Again: `);
    if (first !== again) throw new UserError('the two passwords differ');
    return first;
  };
}

async function valueToEncrypt(value: string | undefined, o: { stdin?: boolean; keepTrailingNewline?: boolean }): Promise<string> {
  if (value !== undefined && o.stdin) throw new UserError('give the value either as an argument or with --stdin, not both');
  if (value !== undefined) {
    process.stderr.write('warning: a value given as an argument stays in your shell history; prefer --stdin or the prompt\n');
    return value;
  }
  if (o.stdin || !process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return o.keepTrailingNewline ? text : text.replace(/\r?\n$/, '');
  }
  const first = await promptHidden('Value to encrypt: ');
  if ((await promptHidden('Again: ')) !== first) throw new UserError('the two values differ');
  return first;
}

function summarize(file: string, r: EncryptResult): void {
  const parts = [`encrypted ${r.encrypted.length} value(s)${r.encrypted.length ? ` (${r.encrypted.join(', ')})` : ''}`];
  if (r.kept.length) parts.push(`${r.kept.length} unchanged`);
  if (r.skipped.length) parts.push(`skipped ${r.skipped.map((s) => `${s.keyPath}: ${s.why}`).join('; ')}`);
  process.stderr.write(`${file}: ${parts.join(', ')}\n`);
}
