/** Picks the reporter for a run: live view on a TTY, plain lines otherwise, JSON lines with --json. */
import type { Reporter } from './events.js';
import { createJsonReporter } from './json.js';
import { createPlainReporter } from './plain.js';
import { createTtyReporter } from './tty.js';

export type { Reporter, RunEvent, HostRecap } from './events.js';
export { renderRecap } from './recap.js';

export interface ReporterOptions {
  mode: 'tty' | 'plain' | 'json';
  diff: boolean;
  out?: NodeJS.WritableStream;
  verbose?: boolean;
}

export function createReporter(opts: ReporterOptions): Reporter {
  const out = opts.out ?? process.stdout;
  if (opts.mode === 'json') return createJsonReporter({ out });
  // The live view needs a terminal; anything else (a pipe, a file, a test stream) gets plain lines.
  if (opts.mode === 'tty' && (out as NodeJS.WriteStream).isTTY) {
    return createTtyReporter({ out: out as NodeJS.WriteStream, diff: opts.diff, verbose: opts.verbose });
  }
  return createPlainReporter({ out, diff: opts.diff, verbose: opts.verbose });
}
