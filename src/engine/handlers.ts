/**
 * Handlers: notified by tasks that changed, run once at the end of the play — even after a
 * later task failed — and never lost. A notification is written to the host as soon as it is
 * made and cleared only when its handler succeeded, so a handler that failed (or a run that
 * died before it) runs at the end of the same play on the next run, which says why.
 *
 * On the host: /var/lib/infra/pending-handlers/<owner>.json (0600 in a 0700 directory), or
 * ${XDG_STATE_HOME:-~/.local/state}/infra/pending-handlers when the session is not root.
 * <owner> is what defines the handler: its role ("role-nginx") or its play ("play-site").
 */
import { quote } from '../shell/quote.js';
import type { Transport } from '../transport/types.js';
import { messageOf } from '../errors.js';
import type { BoundTask, PreparedPlay } from './types.js';
import type { HostRun } from './host-run.js';
import { runTask, type TaskEnv } from './task-run.js';
import { SESSION_UID } from '../transport/session-script.js';

interface PendingEntry {
  name: string;
  runId: string;
  since: string;
}

const DIR =
  `if [ "${SESSION_UID}" = 0 ]; then d=/var/lib/infra/pending-handlers; else d="\${XDG_STATE_HOME:-$HOME/.local/state}/infra/pending-handlers"; fi`;

/** The pending notifications stored on one host, by owner. */
export class PendingHandlers {
  private constructor(
    private readonly run: Transport['run'],
    private readonly files: Map<string, PendingEntry[]>,
  ) {}

  /** Reads every pending file of the host (one command). */
  /** `read`: how the files are read (by default `run`, which later writes go through). */
  static async load(run: Transport['run'], read: Transport['run'] = run): Promise<PendingHandlers> {
    const r = await read(`${DIR}\nfor f in "$d"/*.json; do [ -f "$f" ] && { cat "$f"; echo; }; done; exit 0`);
    if (r.code !== 0) throw new Error(`cannot read pending handlers: ${r.stderr.trim()}`);
    const files = new Map<string, PendingEntry[]>();
    for (const line of r.stdout.split('\n')) {
      if (!line.trim()) continue;
      try {
        const f = JSON.parse(line) as { owner?: unknown; handlers?: unknown };
        if (typeof f.owner === 'string' && Array.isArray(f.handlers)) files.set(f.owner, f.handlers as PendingEntry[]);
      } catch {
        /* a damaged file: its handlers are rerun only if notified again */
      }
    }
    return new PendingHandlers(run, files);
  }

  /** The run that left this handler pending, if one did. */
  pendingFrom(owner: string, name: string): string | undefined {
    return this.files.get(owner)?.find((e) => e.name === name)?.runId;
  }

  async add(owner: string, names: string[], runId: string): Promise<void> {
    const entries = this.files.get(owner) ?? [];
    const fresh = names.filter((n) => !entries.some((e) => e.name === n));
    if (fresh.length === 0) return;
    const since = new Date().toISOString();
    await this.#write(owner, [...entries, ...fresh.map((name) => ({ name, runId, since }))]);
  }

  async clear(owner: string, name: string): Promise<void> {
    const entries = this.files.get(owner) ?? [];
    if (!entries.some((e) => e.name === name)) return;
    await this.#write(owner, entries.filter((e) => e.name !== name));
  }

  async #write(owner: string, entries: PendingEntry[]): Promise<void> {
    const file = `"$d"/${quote(`${owner}.json`)}`;
    const r =
      entries.length === 0
        ? await this.run(`${DIR}\nrm -f -- ${file}`)
        : await this.run(`${DIR}\numask 077 && mkdir -p -- "$d" && cat >"$d/.pending.tmp" && mv -f -- "$d/.pending.tmp" ${file}`, {
            stdin: JSON.stringify({ owner, handlers: entries }) + '\n',
          });
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim()}`);
    if (entries.length === 0) this.files.delete(owner);
    else this.files.set(owner, entries);
  }
}

/** "role-nginx" / "play-web-servers": the file a handler's notifications live in. */
export function ownerOf(handler: BoundTask, play: PreparedPlay): string {
  const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9_.]+/g, '-').replace(/^-+|-+$/g, '') || 'unnamed';
  return handler.roleName ? `role-${slug(handler.roleName)}` : `play-${slug(play.name)}`;
}

/** The handlers of one play on one host: what was notified, what an earlier run left pending. */
export class PlayHandlers {
  readonly #notified = new Set<string>();
  /** Ran in this play (at a meta.flushHandlers): not again unless notified again. */
  readonly #ran = new Set<string>();

  constructor(
    private readonly env: TaskEnv & { runId: string },
    private readonly h: HostRun,
    private readonly play: PreparedPlay,
    private readonly handlers: Map<string, BoundTask>,
    private readonly pending: PendingHandlers,
  ) {}

  /** A task changed: note (and, unless in check mode, persist) what it notifies. */
  async notify(bt: BoundTask): Promise<void> {
    const byOwner = new Map<string, string[]>();
    for (const n of bt.task.notify) {
      const handler = this.handlers.get(n);
      if (!handler) {
        this.h.fail(`${bt.roleName ? `role ${bt.roleName}: ` : ''}a task notifies unknown handler "${n}"`);
        continue;
      }
      this.#notified.add(n);
      const owner = ownerOf(handler, this.play);
      byOwner.set(owner, [...(byOwner.get(owner) ?? []), n]);
    }
    if (this.env.checkMode) return;
    for (const [owner, names] of byOwner) {
      try {
        await this.pending.add(owner, names, this.env.runId);
      } catch (e) {
        this.h.fail(`cannot record the notification of ${names.map((n) => `"${n}"`).join(', ')} on the host: ${messageOf(e)}`);
      }
    }
  }

  /** Runs, in definition order, every handler notified now or left pending by an earlier run. */
  async run(): Promise<void> {
    for (const [n, bt] of this.handlers) {
      if (this.h.down === 'unreachable' || this.env.control.aborted) return;
      const owner = ownerOf(bt, this.play);
      const from = this.#notified.has(n) || this.#ran.has(n) ? undefined : this.pending.pendingFrom(owner, n);
      if (!this.#notified.has(n) && from === undefined) continue;
      this.#notified.delete(n);
      this.#ran.add(n);
      const o = await runTask(this.env, this.h, bt, { playIndex: this.play.index, handler: true, why: from && `pending from run ${from}` });
      if (o.status === 'failed') {
        this.h.taskFailed();
      } else if (!this.env.checkMode) {
        try {
          await this.pending.clear(owner, n);
        } catch (e) {
          this.h.fail(`handler "${n}" ran, but its pending notification could not be cleared: ${messageOf(e)}`);
        }
      }
    }
  }
}
