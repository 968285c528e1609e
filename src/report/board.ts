/** Per-host state for the live view: what each host is doing now and its counts so far. Pure. */
import type { RunEvent } from './events.js';
import { palette } from '../render/ansi.js';

export type HostPhase = 'waiting' | 'connecting' | 'running' | 'idle' | 'done' | 'failed' | 'unreachable';

export interface HostRow {
  host: string;
  phase: HostPhase;
  task?: string;
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  error?: string;
}

export class HostBoard {
  readonly rows = new Map<string, HostRow>();
  private width = 0;

  /** Applies an event; returns the hosts whose row changed. */
  apply(e: RunEvent): string[] {
    switch (e.type) {
      case 'run.start':
      case 'play.start':
        return e.hosts.map((h) => this.row(h).host);
      case 'host.connecting':
        return this.set(e.host, { phase: 'connecting' });
      case 'host.connected':
        return this.set(e.host, { phase: 'idle' });
      case 'host.unreachable':
        return this.set(e.host, { phase: 'unreachable', error: e.error, task: undefined });
      case 'host.failed':
        return this.set(e.host, { phase: 'failed', error: e.error, task: undefined });
      case 'task.start':
        return this.set(e.host, { phase: 'running', task: e.task });
      case 'task.result': {
        const r = this.row(e.host);
        r[e.status]++;
        return this.set(e.host, { phase: isFinal(r.phase) ? r.phase : 'idle', task: undefined });
      }
      case 'exec.output': {
        const r = this.row(e.host);
        if (e.code === 0) r.ok++;
        else r.failed++;
        return this.set(e.host, { phase: 'idle' });
      }
      case 'play.end':
        return [];
      case 'run.end':
        return [...this.rows.values()].filter((r) => !isFinal(r.phase)).map((r) => this.set(r.host, { phase: 'done', task: undefined })[0]);
    }
  }

  /** A host ends badly when it was unreachable, failed as a whole, or had a failed task. */
  failedHosts(): string[] {
    return [...this.rows.values()].filter((r) => r.phase === 'failed' || r.phase === 'unreachable' || r.failed > 0).map((r) => r.host);
  }

  /** "db1   3 ok  1 changed   files.template /etc/x". */
  title(host: string, color: boolean): string {
    const c = palette(color);
    const r = this.row(host);
    const counts = [
      c.green(`${r.ok} ok`),
      r.changed ? c.yellow(`${r.changed} changed`) : c.dim(`${r.changed} changed`),
      r.failed ? c.red(`${r.failed} failed`) : c.dim(`${r.failed} failed`),
      ...(r.skipped ? [c.dim(`${r.skipped} skipped`)] : []),
    ].join('  ');
    return `${c.bold(host.padEnd(this.width))}  ${counts}  ${this.doing(r, color)}`;
  }

  private doing(r: HostRow, color: boolean): string {
    const c = palette(color);
    switch (r.phase) {
      case 'running':
        return r.task ?? '';
      case 'connecting':
        return c.dim('connecting…');
      case 'waiting':
        return c.dim('waiting');
      case 'idle':
        return '';
      case 'done':
        return c.dim('done');
      case 'failed':
      case 'unreachable':
        return c.red(r.phase); // listr2 prints the error message under the row
    }
  }

  private row(host: string): HostRow {
    let r = this.rows.get(host);
    if (!r) {
      r = { host, phase: 'waiting', ok: 0, changed: 0, failed: 0, skipped: 0 };
      this.rows.set(host, r);
      this.width = Math.max(this.width, host.length);
    }
    return r;
  }

  private set(host: string, patch: Partial<HostRow>): string[] {
    const r = this.row(host);
    // A host that failed or was unreachable stays so (handlers may still report on it).
    if (isFinal(r.phase) && patch.phase && patch.phase !== r.phase) delete patch.phase;
    Object.assign(r, patch);
    return [host];
  }
}

function isFinal(p: HostPhase): boolean {
  return p === 'failed' || p === 'unreachable' || p === 'done';
}
