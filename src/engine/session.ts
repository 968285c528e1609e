/**
 * The live side of a run, one object for apply, plan, run and exec: run id, reporter,
 * transport pool, the hosts' progress, lock metadata, run.start / run.end, the audit record,
 * and what Ctrl-C asks for (RunControl, driven by the CLI, which owns the process signals):
 * an abort kills what runs on the hosts and drops their sessions, which releases their run
 * locks; the audit record is still written, marked aborted, through fresh connections.
 */
import { randomBytes } from 'node:crypto';
import { userInfo, hostname } from 'node:os';
import type { Inventory } from '../inventory/types.js';
import { TransportPool } from '../transport/index.js';
import type { LockMeta, Transport } from '../transport/types.js';
import { createReporter } from '../report/index.js';
import type { Reporter } from '../report/events.js';
import type { AuditMode } from '../audit/record.js';
import { EXIT, UserError } from '../errors.js';
import { redact } from '../secrets/secret.js';
import type { RunControl } from './control.js';
import { HostRuns } from './host-run.js';
import { recordAudit } from './audit.js';
import { shardLabel, type Shard } from './shard.js';

export interface KeepaliveOptions {
  intervalMs?: number;
  countMax?: number;
}

export interface SessionRequest {
  inventory: Inventory;
  /** How the inventory is named in output (default: as given). */
  inventoryName?: string;
  /** Every host the run may touch. */
  hosts: string[];
  mode: AuditMode;
  json: boolean;
  diff: boolean;
  acceptNew: boolean;
  /** "infra apply -i lab ..." for the lock metadata and the audit trail. */
  commandLine: string;
  limit?: string;
  /** --shard K/N: recorded in run.start and the audit trail. */
  shard?: Shard;
  keepalive?: KeepaliveOptions;
  control: RunControl;
  /** Transports already connecting (sessionPool, warmed while the run loaded its input). */
  pool?: TransportPool;
}

/** The run's transports: made by the session, or earlier by a run that warms connections. */
export function sessionPool(req: Pick<SessionRequest, 'inventory' | 'acceptNew' | 'keepalive'>): TransportPool {
  return new TransportPool(req.inventory, {
    knownHostsPath: req.inventory.knownHostsPath,
    acceptNew: req.acceptNew,
    keepaliveIntervalMs: req.keepalive?.intervalMs,
    keepaliveCountMax: req.keepalive?.countMax,
  });
}

export interface RunEnd {
  exitCode: number;
  /** The rollout stopped early (failure policy or abort). */
  aborted: boolean;
  /** Hosts that keep a copy of the audit record (default: those that changed). */
  recordOn?: string[];
}

export function chooseReporter(opts: { json: boolean; diff: boolean }): Reporter {
  const mode = opts.json ? 'json' : process.stdout.isTTY && !process.env.CI ? 'tty' : 'plain';
  return createReporter({ mode, diff: opts.diff, out: process.stdout });
}

export class RunSession {
  readonly runId = randomBytes(4).toString('hex');
  readonly started = Date.now();
  readonly reporter: Reporter;
  readonly pool: TransportPool;
  readonly hosts: HostRuns;
  #fresh: Transport[] = [];
  /** The sessions were killed (abort, crash): the audit record goes through fresh connections. */
  #killed?: Promise<void>;
  #ended = false;
  #closed?: Promise<void>;
  #unsubscribe: (() => void)[];

  constructor(private readonly req: SessionRequest) {
    this.reporter = chooseReporter(req);
    this.hosts = new HostRuns(this.reporter);
    this.pool = req.pool ?? sessionPool(req);
    this.#unsubscribe = [
      req.control.onAbort(() => void this.#kill()),
      req.control.onCrash(async () => {
        await this.crashed();
        await this.close();
      }),
    ];
  }

  get control(): RunControl {
    return this.req.control;
  }

  lockMeta(): LockMeta {
    return { user: userInfo().username, controller: hostname(), runId: this.runId, command: this.req.commandLine, since: new Date().toISOString() };
  }

  start(): void {
    this.reporter.emit({
      type: 'run.start',
      runId: this.runId,
      command: redact(this.req.commandLine),
      mode: this.req.mode,
      inventory: this.#inventoryName,
      hosts: this.req.hosts,
      ...(this.req.shard ? { shard: shardLabel(this.req.shard) } : {}),
      at: new Date(this.started).toISOString(),
    });
  }

  /** 130 when interrupted, 1 when a host failed, 3 for pending changes when asked, else 0. */
  exitCode(r: { anyFailed: boolean; changesPending?: boolean }): number {
    if (this.control.stopping) return EXIT.interrupted;
    if (r.anyFailed) return EXIT.hostFailed;
    return r.changesPending ? EXIT.changesPending : EXIT.ok;
  }

  /** Writes the audit record, then the recap (run.end). Once. */
  async end(r: RunEnd): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    const recap = this.hosts.recap(this.pool.counters());
    const aborted = r.aborted || this.control.aborted;
    await recordAudit({
      runId: this.runId,
      commandLine: this.req.commandLine,
      inventory: this.#inventoryName,
      inventoryDir: this.req.inventory.dir,
      limit: this.req.limit,
      shard: this.req.shard && shardLabel(this.req.shard),
      mode: this.req.mode,
      recap,
      changedTasks: this.hosts.changedTasks(),
      started: this.started,
      exitCode: r.exitCode,
      aborted,
      hosts: r.recordOn,
      runOn: (host) => this.#runOn(host),
    });
    this.reporter.emit({
      type: 'run.end',
      runId: this.runId,
      recap,
      durationMs: Date.now() - this.started,
      interrupted: this.control.stopping,
      exitCode: r.exitCode,
    });
  }

  /**
   * Closes the connections (each session shell gets its EOF at once) and the reporter. When the
   * process ends with the run (the CLI), nothing waits for the hosts' goodbyes (≈ 50 ms at the
   * end of every run): each shell still runs what it was sent, then exits on its EOF with its
   * lock and temp dir, and the connections go with the process.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      for (const u of this.#unsubscribe) u();
      const connections = (async () => {
        await Promise.allSettled(this.#fresh.map((t) => t.close()));
        await this.pool.closeAll();
      })();
      if (!this.control.opts.processExits) await connections;
      await this.reporter.close();
    })();
    return this.#closed;
  }

  get #inventoryName(): string {
    return this.req.inventoryName ?? this.req.inventory.env;
  }

  /**
   * Runs the session's work and closes the session whatever happens. A bug (anything but bad
   * input) ends the run as crashed first: what runs on the hosts is killed, the record is written.
   */
  async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      if (!(e instanceof UserError)) await this.crashed();
      throw e;
    } finally {
      await this.close();
    }
  }

  /** A bug ended the run (the CLI reports it, exit 70): kill what runs on the hosts, record what is known. */
  async crashed(): Promise<void> {
    await this.#kill();
    await this.end({ exitCode: EXIT.bug, aborted: true });
  }

  #kill(): Promise<void> {
    return (this.#killed ??= this.pool.abortAll());
  }

  /** The host's session; once killed, a fresh connection (appending a record needs no lock). */
  #runOn(host: string): Transport['run'] {
    if (!this.#killed) return (cmd, o) => this.pool.get(host).run(cmd, o);
    const t = this.pool.open(host);
    this.#fresh.push(t);
    return (cmd, o) => t.run(cmd, o);
  }
}
