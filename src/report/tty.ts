/**
 * The live per-host view on a TTY, drawn by listr2 (the only file that knows listr2): one row
 * per host with its counts and current task. Events are pushed from many hosts at once; each
 * host is a listr task whose promise settles at run.end (or when the host fails as a whole),
 * and whose title is rewritten on every event. Details that do not fit a row (changes, diffs,
 * errors, command output) are kept per host and printed after the live view, then the recap.
 */
import { Listr, ListrLogger, ProcessOutput, type DefaultRenderer, type ListrTaskWrapper } from 'listr2';
import type { Reporter, RunEvent } from './events.js';
import { redact } from '../secrets/secret.js';
import { palette } from '../render/ansi.js';
import { HostBoard } from './board.js';
import { execOutputLines, indent, onceWarning, statusLabel, taskResultLines } from './format.js';
import { renderRecap } from './recap.js';
import { createPlainReporter } from './plain.js';
import { printableEvent } from './printable.js';

export interface TtyOptions {
  out: NodeJS.WriteStream;
  diff: boolean;
  verbose?: boolean;
  color?: boolean;
}

type RowTask = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof DefaultRenderer>;

interface HostHandle {
  task?: RowTask;
  settle?: (error?: Error) => void;
  /** Settled before listr started the task: applied when it does. */
  outcome?: { error?: Error };
}

export function createTtyReporter(opts: TtyOptions): Reporter {
  const color = opts.color ?? !process.env.NO_COLOR;
  const verbose = opts.verbose ?? false;
  const c = palette(color);
  const board = new HostBoard();
  const handles = new Map<string, HostHandle>();
  const details = new Map<string, string[]>();
  const trailer: string[] = [];
  /** Warnings already shown: each distinct text once per run. */
  const warned = new Set<string>();
  let running: Promise<void> | undefined;
  let finishing: Promise<void> | undefined;
  let late: Reporter | undefined;
  let delegate: Reporter | undefined;
  const maxRows = () => Math.max(5, (opts.out.rows || 24) - 4);

  const note = (host: string, lines: string[]) => {
    if (!details.has(host)) details.set(host, []);
    details.get(host)!.push(...lines);
  };

  function start(hosts: string[]): void {
    for (const h of hosts) handles.set(h, {});
    const rendererOptions = {
      logger: new ListrLogger({ useIcons: true, toStderr: [], processOutput: new ProcessOutput(opts.out, opts.out) }),
      collapseErrors: false,
    };
    const list = new Listr(
      hosts.map((host) => ({
        title: redact(board.title(host, color)),
        task: (_ctx: unknown, task: RowTask) =>
          new Promise<void>((resolve, reject) => {
            const handle = handles.get(host)!;
            handle.task = task;
            handle.settle = (error) => (error ? reject(error) : resolve());
            task.title = redact(board.title(host, color));
            if (handle.outcome) handle.settle(handle.outcome.error);
          }),
      })),
      {
        concurrent: true,
        exitOnError: false,
        registerSignalListeners: false, // the session owns Ctrl-C
        renderer: 'default',
        fallbackRenderer: 'default', // we chose the live view already (stdout is a TTY)
        rendererOptions: rendererOptions,
        // listr2 takes these when process.stdout itself is not a TTY (our stream may still be one).
        fallbackRendererOptions: rendererOptions,
      },
    );
    running = list.run().then(
      () => undefined,
      () => undefined, // failures are shown on their rows and in the recap
    );
  }

  function settle(host: string, error?: Error): void {
    const handle = handles.get(host);
    if (!handle || handle.outcome) return;
    handle.outcome = { error };
    handle.settle?.(error);
  }

  function refresh(hosts: string[]): void {
    for (const h of hosts) {
      const handle = handles.get(h);
      if (handle?.task && !handle.outcome) handle.task.title = redact(board.title(h, color));
    }
  }

  function collect(e: RunEvent): void {
    switch (e.type) {
      case 'task.result': {
        const r = onceWarning(e, warned);
        if ((r.status === 'ok' || r.status === 'skipped') && !r.warning) {
          if (verbose) note(e.host, [taskResultLines(r, { diff: opts.diff, color, verbose }).head]);
          return;
        }
        const { head, body } = taskResultLines(r, { diff: opts.diff, color, verbose });
        note(e.host, [head, ...body]);
        return;
      }
      case 'host.unreachable':
      case 'host.failed': {
        const label = e.type === 'host.unreachable' ? 'UNREACHABLE' : 'FAILED';
        const [first, ...rest] = e.error.split('\n');
        note(e.host, [`${statusLabel(label, color)} ${first}`, ...indent(rest, 4)]);
        settle(e.host, new Error(redact(first)));
        return;
      }
      case 'exec.output':
        note(e.host, execOutputLines(e, color));
        return;
      case 'run.end':
        trailer.push(renderRecap(e.recap, e.durationMs, color));
        if (e.interrupted) trailer.push(c.red('interrupted'));
        return;
      default:
        return;
    }
  }

  /** Ends the live view once, whoever asks first (run.end or close()); both wait for it. */
  function finish(): Promise<void> {
    finishing ??= drain();
    return finishing;
  }

  async function drain(): Promise<void> {
    const failed = new Set(board.failedHosts());
    for (const h of handles.keys()) settle(h, failed.has(h) ? new Error('failed') : undefined);
    await running;
    const out: string[] = [];
    for (const [host, lines] of details) out.push('', c.bold(host), ...indent(lines, 2));
    if (trailer.length) out.push('', ...trailer);
    if (out.length) opts.out.write(redact(out.join('\n')) + '\n');
  }

  return {
    emit(event) {
      const e = printableEvent(event); // remote text never drives the terminal
      if (finishing) {
        // Late events (after run.end or close) can no longer go to the live view: print them plainly.
        void finishing.then(() => (late ??= createPlainReporter({ out: opts.out, diff: opts.diff, verbose, color })).emit(e));
        return;
      }
      if (delegate) return delegate.emit(e);
      if (e.type === 'run.start' && !running && e.hosts.length > maxRows()) {
        // More rows than the terminal has: a redrawn view would scroll and smear. Plain lines instead.
        delegate = createPlainReporter({ out: opts.out, diff: opts.diff, verbose, color });
        return delegate.emit(e);
      }
      const changed = board.apply(e);
      if (e.type === 'run.start' && !running) start(e.hosts);
      refresh(changed); // before collect(): a host that failed gets its last title, then settles
      collect(e);
      if (e.type === 'run.end') void finish();
    },
    close: () => (delegate ? delegate.close() : finish()),
  };
}
