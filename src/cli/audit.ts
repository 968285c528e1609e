/** `infra audit verify|log`: check the hash chain of an audit file, list recent runs. */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { defaultAuditFile, readAuditLines, verifyChain, type AuditRecord } from '../audit/index.js';

export function register(program: Command): void {
  const audit = program.command('audit').description('the audit trail: one hash-chained JSON line per run');

  audit
    .command('verify')
    .description('check the hash chain of an audit file; names the first broken line (exit 1)')
    .argument('[file]', 'audit file (default $XDG_STATE_HOME/infra/audit.jsonl, or a copy of a host\'s /var/log/infra/audit.jsonl)')
    .option('--continued', 'the file continues a rotated one: its first line may point at an earlier line')
    .action((file: string | undefined, o: { continued?: boolean }) => {
      const path = file ?? defaultAuditFile();
      const r = verifyChain(readAuditLines(path), { continued: o.continued });
      if (r.ok) {
        process.stdout.write(`${path}: ok, ${r.count} record(s), chain intact\n`);
      } else {
        process.stdout.write(`${path}:${r.brokenAt}: chain broken: ${r.reason}\n  (the ${r.count} record(s) before it are intact)\n`);
        process.exitCode = 1;
      }
    });

  audit
    .command('log')
    .description('recent runs, newest last')
    .argument('[file]', 'audit file (default $XDG_STATE_HOME/infra/audit.jsonl)')
    .option('-n, --lines <n>', 'how many runs', positive, 20)
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

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
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
