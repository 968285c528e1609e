/** `infra audit verify|key|log`: check the signed chain (and the hosts' copies), print the public key, list recent runs. */
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import {
  crossCheck,
  defaultAuditFile,
  defaultAuditKeyFile,
  loadSigningKey,
  loadVerifyKey,
  publicKeyPem,
  readAuditLines,
  verifyChain,
  type AuditRecord,
  type VerifyKey,
} from '../audit/index.js';
import { readHostCopies } from '../engine/audit.js';
import { collect, positiveInt } from './options.js';

interface VerifyOptions {
  continued?: boolean;
  key: string[];
  againstHosts?: boolean;
  inventory?: string;
  limit?: string;
  vaultPasswordFile?: string;
  forks: number;
}

export function register(program: Command): void {
  const audit = program.command('audit').description('the audit trail: one signed, chained JSON line per run');

  audit
    .command('verify')
    .description('check the signatures and chain of an audit file, and with --against-hosts the hosts\' copies (exit 1 on any problem)')
    .argument('[file]', 'audit file (default $XDG_STATE_HOME/infra/audit.jsonl)')
    .option('--continued', 'the file continues a rotated one: its first line may link to an earlier line')
    .option('--key <file>', `trusted public (or private) key, repeatable (default: this controller's, ${defaultAuditKeyFile()})`, collect, [])
    .option('--against-hosts', "compare with each host's copy (/var/log/infra/audit.jsonl): finds a file cut short or rewritten")
    .option('-i, --inventory <env|path>', 'with --against-hosts: the hosts to ask')
    .option('-l, --limit <pattern>', 'with --against-hosts: only these hosts')
    .option('--vault-password-file <file>', 'vault password file (or INFRA_VAULT_PASSWORD_FILE)')
    .option('--forks <n>', 'hosts in parallel', positiveInt, 50)
    .action(async (file: string | undefined, o: VerifyOptions) => {
      if (o.againstHosts && !o.inventory) throw new UserError('--against-hosts needs the inventory whose hosts to ask', { hint: 'add -i ENV' });
      const path = file ?? defaultAuditFile();
      const keys = (o.key.length ? o.key : [defaultAuditKeyFile()]).map(loadVerifyKey);
      const lines = readAuditLines(path);
      const r = verifyChain(lines, { keys, continued: o.continued });
      let ok = r.ok;
      if (r.unsigned) process.stdout.write(`${path}: the first ${r.unsigned} line(s) are unsigned records from before signing: not verifiable\n`);
      if (r.ok) {
        process.stdout.write(`${path}: ok, ${r.count} record(s), chain intact${r.head ? `, head seq ${r.head.seq}` : ''}\n`);
      } else {
        process.stdout.write(`${path}:${r.brokenAt}: chain broken: ${r.reason}\n  (the ${r.count} record(s) before it are intact)\n`);
      }
      if (o.againstHosts) ok = (await verifyAgainstHosts(lines, keys, { ...o, inventory: o.inventory! })) && ok;
      if (!ok) process.exitCode = 1;
    });

  audit
    .command('key')
    .description("print this controller's public audit key (created on first use): verifiers need only this")
    .action(() => {
      const key = loadSigningKey(defaultAuditKeyFile());
      process.stdout.write(`# infra audit key ${key.id} (private key: ${defaultAuditKeyFile()})\n${publicKeyPem(key)}`);
    });

  audit
    .command('log')
    .description('recent runs, newest last')
    .argument('[file]', 'audit file (default $XDG_STATE_HOME/infra/audit.jsonl)')
    .option('-n, --lines <n>', 'how many runs', positiveInt, 20)
    .option('--json', 'the records as JSON lines')
    .action((file: string | undefined, o: { lines: number; json?: boolean }) => {
      const path = file ?? defaultAuditFile();
      const lines = readAuditLines(path).filter((l) => l.trim());
      if (!lines.length) return void process.stdout.write(`no runs recorded yet in ${path}\n`);
      const recent = lines.slice(-o.lines);
      if (o.json) return void process.stdout.write(recent.join('\n') + '\n');
      process.stdout.write(formatTable(recent.map(parseOrNull)) + '\n');
    });
}

/** Prints one block per host; true when every host was read and agrees with the file. */
async function verifyAgainstHosts(lines: string[], keys: VerifyKey[], o: VerifyOptions & { inventory: string }): Promise<boolean> {
  const copies = await readHostCopies({ cwd: process.cwd(), inventory: o.inventory, limit: o.limit, vaultPasswordFile: o.vaultPasswordFile, forks: o.forks });
  let ok = true;
  for (const copy of copies) {
    if ('error' in copy) {
      process.stdout.write(`${copy.host}: not checked: ${copy.error}\n`);
      ok = false;
      continue;
    }
    const c = crossCheck(lines, copy.host, copy.lines, keys);
    const head = c.head !== undefined ? ` (its head: seq ${c.head})` : '';
    if (c.problems.length) {
      ok = false;
      process.stdout.write(`${copy.host}: ${c.problems.length} problem(s), ${c.matched} run(s) match${head}\n${c.problems.map((p) => `  - ${p}\n`).join('')}`);
    } else {
      process.stdout.write(`${copy.host}: ok, ${c.matched} run(s) match the controller's${head}\n`);
    }
    for (const n of c.notes) process.stdout.write(`  note: ${n}\n`);
  }
  return ok;
}

function parseOrNull(line: string): AuditRecord | null {
  try {
    return JSON.parse(line) as AuditRecord;
  } catch {
    return null;
  }
}

export function formatTable(records: Array<AuditRecord | null>): string {
  const head = ['START', 'RUN', 'USER', 'MODE', 'RESULT', 'HOSTS', 'CHANGED', 'FAILED', 'INVENTORY', 'GIT', 'COMMAND'];
  const rows = records.map((r) => {
    if (!r) return ['?', '(unreadable line)', '', '', '', '', '', '', '', '', ''];
    const hosts = Object.values(r.hosts ?? {});
    const git = r.git ? `${r.git.commit.slice(0, 8)}${r.git.dirty ? '+dirty' : ''}` : '-';
    const command = r.command.length > 60 ? `${r.command.slice(0, 57)}...` : r.command;
    return [
      r.start.replace('T', ' ').slice(0, 19),
      r.runId,
      `${r.user}@${r.controller}`,
      r.mode,
      r.result,
      String(hosts.length),
      String(hosts.filter((h) => h.changed > 0).length),
      String(hosts.filter((h) => h.failed > 0 || h.unreachable).length),
      r.limit ? `${r.inventory} (${r.limit})` : r.inventory,
      git,
      command,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}
