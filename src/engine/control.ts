/**
 * How the CLI steers a running engine; the engine itself never touches process signals.
 *   stop():  start nothing new; running tasks and pending handlers finish (first Ctrl-C).
 *   abort(): kill what runs on the hosts now, release their run locks, record the run as
 *            aborted and return (second Ctrl-C). The session does the killing.
 *   crash(): a bug escaped (the CLI's last-resort handler): abort, and let the session write
 *            what it knows to the audit trail before the process exits.
 */
export class RunControl {
  #stopped = false;
  #aborted = false;
  #onAbort = new Set<() => void>();
  #onCrash = new Set<() => Promise<void>>();

  /**
   * `processExits`: the process ends with the run (the CLI). The session then hangs up its
   * connections at the end rather than waiting for every host to say goodbye.
   */
  constructor(readonly opts: { processExits?: boolean } = {}) {}

  /** Nothing new may start (stopped or aborted). */
  get stopping(): boolean {
    return this.#stopped || this.#aborted;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  stop(): void {
    this.#stopped = true;
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    for (const cb of [...this.#onAbort]) cb();
  }

  async crash(): Promise<void> {
    this.abort();
    await Promise.allSettled([...this.#onCrash].map((cb) => cb()));
  }

  /** cb runs once on abort (at once if already aborted). Returns the unsubscribe. */
  onAbort(cb: () => void): () => void {
    if (this.#aborted) {
      cb();
      return () => {};
    }
    this.#onAbort.add(cb);
    return () => this.#onAbort.delete(cb);
  }

  onCrash(cb: () => Promise<void>): () => void {
    this.#onCrash.add(cb);
    return () => this.#onCrash.delete(cb);
  }
}
