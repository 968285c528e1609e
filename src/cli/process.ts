/**
 * The process itself — signals, last-resort error handling, error reporting — is the CLI's
 * alone: the engine gets a RunControl and never installs a handler.
 *
 * Ctrl-C (or SIGTERM, or SIGHUP: the terminal went away) during a run: the first stops it
 * (nothing new starts; running tasks and pending handlers finish), the second aborts it (the
 * commands running on the hosts are killed, their run locks released, the run recorded as
 * aborted), a third exits at once. Output whose reader went away (`| head`, a closed
 * terminal, a caller's timeout) stops a run the same way: it ends 130, never 0 half-done.
 * A bug that escapes (uncaught exception, unhandled rejection): its message and stack are
 * redacted, the active run is aborted and recorded, and the exit code is 70.
 */
import { CommanderError } from 'commander';
import { UserError, EXIT } from '../errors.js';
import { redact } from '../secrets/secret.js';
import { RunControl } from '../engine/control.js';

const activeRuns = new Set<RunControl>();
/** Set by the first run of this process. */
let ranARun = false;
const RUN_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Write errors that mean nobody reads our output any more. */
const READER_GONE = new Set(['EPIPE', 'EIO', 'ERR_STREAM_DESTROYED']);

/**
 * An error on stdout or stderr. The reader gone: a run stops (as on the first Ctrl-C) and goes
 * on without output, to record itself and exit 130; any other command just ends (exit 0, like
 * `infra inventory hosts | head` expects). Anything else is a real error.
 */
export function onOutputError(e: NodeJS.ErrnoException): void {
  if (!READER_GONE.has(e.code ?? '')) throw e;
  for (const c of activeRuns) c.stop();
  // After a run, an error of one of its last writes may still arrive: its exit code stands.
  if (activeRuns.size === 0 && !ranARun) process.exit(EXIT.ok);
}

/** How long a crashed run may take to record itself before the process exits anyway. */
const CRASH_RECORD_MS = 15_000;

/** Runs fn with a RunControl driven by SIGINT/SIGTERM for as long as it runs. */
export async function withRunControl<T>(fn: (control: RunControl) => Promise<T>): Promise<T> {
  const control = new RunControl({ processExits: true });
  let signals = 0;
  const onSignal = (): void => {
    signals++;
    if (signals === 1) {
      process.stderr.write('\ninterrupted: finishing running tasks and pending handlers (Ctrl-C again to abort)\n');
      control.stop();
    } else if (signals === 2) {
      process.stderr.write('\naborted: killing what runs on the hosts, then recording the run (Ctrl-C again to quit at once)\n');
      control.abort();
    } else {
      process.exit(EXIT.interrupted);
    }
  };
  for (const sig of RUN_SIGNALS) process.on(sig, onSignal);
  activeRuns.add(control);
  ranARun = true;
  try {
    const result = await fn(control);
    // A crash ended the run under us: its handler records it and exits 70, not this result.
    if (crashed) await crashed;
    return result;
  } catch (e) {
    if (crashed) await crashed;
    throw e;
  } finally {
    activeRuns.delete(control);
    for (const sig of RUN_SIGNALS) process.off(sig, onSignal);
  }
}

/** Installs the uncaughtException / unhandledRejection handlers (once per process). */
export function handleCrashes(): void {
  if (crashHandled) return;
  crashHandled = true;
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}

let crashHandled = false;
/** Set once a crash is being handled; never resolves (it ends in process.exit). */
let crashed: Promise<never> | undefined;

function crash(e: unknown): void {
  if (crashed) return; // a second failure while the first is being recorded
  crashed = (async () => {
    reportError(e);
    setTimeout(() => process.exit(EXIT.bug), CRASH_RECORD_MS);
    await Promise.allSettled([...activeRuns].map((c) => c.crash()));
    return process.exit(EXIT.bug);
  })();
}

/** Prints an error the way its kind asks for and returns the exit code. */
export function reportError(e: unknown): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return EXIT.ok;
    return EXIT.badInput; // commander already printed the message
  }
  if (e instanceof UserError) {
    process.stderr.write(redact(`error: ${e.format()}`) + '\n');
    return EXIT.badInput;
  }
  process.stderr.write(redact(`infra: internal error (a bug): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`) + '\n');
  return EXIT.bug;
}
