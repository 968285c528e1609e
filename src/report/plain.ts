/**
 * Plain lines for CI and non-TTY output: "[db1] changed  files.template /etc/...". Each event
 * is written in one piece, so lines from hosts running in parallel never interleave inside an
 * event (a task's diff or a command's output stays together). Control characters in the
 * event's text are escaped (printable.ts): remote output never drives the terminal.
 */
import type { Reporter, RunEvent } from './events.js';
import { redact } from '../secrets/secret.js';
import { palette } from '../render/ansi.js';
import { execOutputLines, formatMs, indent, onceWarning, statusLabel, taskResultLines } from './format.js';
import { renderRecap } from './recap.js';
import { printableEvent } from './printable.js';

export interface PlainOptions {
  out: NodeJS.WritableStream;
  diff: boolean;
  verbose?: boolean;
  color?: boolean;
}

export function createPlainReporter(opts: PlainOptions): Reporter {
  const color = opts.color ?? false;
  const verbose = opts.verbose ?? false;
  const c = palette(color);
  let hostWidth = 0;
  const warnings = new Set<string>();

  const write = (lines: string[]) => {
    if (lines.length) opts.out.write(redact(lines.join('\n')) + '\n');
  };
  const tag = (host: string) => `[${host}]`.padEnd(hostWidth + 2);
  const hostLines = (host: string, head: string, body: string[] = []) => [`${tag(host)} ${head}`, ...body];

  function lines(e: RunEvent): string[] {
    switch (e.type) {
      case 'run.start':
        hostWidth = Math.max(0, ...e.hosts.map((h) => h.length));
        return [
          c.bold(e.command) +
            ` — ${e.mode === 'check' ? 'check mode, nothing will be changed' : e.mode}` +
            ` — ${e.hosts.length} ${e.hosts.length === 1 ? 'host' : 'hosts'} of ${e.inventory} — run ${e.runId}`,
        ];
      case 'play.start':
        hostWidth = Math.max(hostWidth, ...e.hosts.map((h) => h.length));
        return ['', c.bold(`PLAY ${e.play}`) + c.dim(` (${e.hosts.length} ${e.hosts.length === 1 ? 'host' : 'hosts'})`)];
      case 'host.connecting':
        return verbose ? hostLines(e.host, c.dim('connecting')) : [];
      case 'host.connected':
        return verbose ? hostLines(e.host, c.dim(`connected in ${formatMs(e.ms)}`)) : [];
      case 'host.unreachable':
        return hostLines(e.host, `${statusLabel('UNREACHABLE', color)} ${firstLine(e.error)}`, indent(restLines(e.error), 4));
      case 'host.failed':
        return hostLines(e.host, `${statusLabel('FAILED', color)} ${firstLine(e.error)}`, indent(restLines(e.error), 4));
      case 'task.start':
        return verbose ? hostLines(e.host, c.dim(`${'start'.padEnd(8)} ${e.task}`)) : [];
      case 'task.result': {
        const r = onceWarning(e, warnings);
        if (r.status === 'skipped' && !verbose && !r.warning) return [];
        const { head, body } = taskResultLines(r, { diff: opts.diff, color, verbose });
        return hostLines(e.host, head, body);
      }
      case 'exec.output': {
        const [head, ...body] = execOutputLines(e, color);
        return hostLines(e.host, head, body.map((l) => `${tag(e.host)} ${l}`));
      }
      case 'play.end':
        return [];
      case 'run.end':
        return ['', renderRecap(e.recap, e.durationMs, color), ...(e.interrupted ? ['', c.red('interrupted')] : [])];
    }
  }

  return {
    emit(e) {
      write(lines(printableEvent(e)));
    },
    async close() {},
  };
}

function firstLine(text: string): string {
  return text.split('\n')[0];
}

function restLines(text: string): string[] {
  return text.split('\n').slice(1);
}
