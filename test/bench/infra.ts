/**
 * The infra side: `bin/infra apply|exec --json` run from test/bench/workdir (its roles/ and
 * playbooks/), measured like Ansible; its JSON-lines recap gives per-host results and the
 * transport's counters (connections, channels, commands, connect time).
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Fleet } from '../integration/fleet.js';
import { measure, type Measured } from './measure.js';
import type { HostRecap } from '../../src/report/events.js';

export const WORKDIR = fileURLToPath(new URL('./workdir/', import.meta.url));

const INFRA = fileURLToPath(new URL('../../bin/infra', import.meta.url));

/** infra's --json recap line for one host (the engine's own type). */
export type InfraHostRecap = HostRecap;

export interface InfraRun {
  m: Measured;
  recap: InfraHostRecap[];
  /** exec: per host exit code, from exec.output events. */
  execCodes: Map<string, number>;
  /** task.result events per host, for "where the time goes". */
  taskMs: Map<string, number>;
  /** host.connected events: ms per host. */
  connectedMs: Map<string, number>;
  /** Task (module) → its ms on every host, for the slowest-tasks view. */
  perTask: Map<string, number[]>;
  /** Host → its first failed task and why, for the problem report. */
  failures: Map<string, string>;
}

export async function runInfraApply(fleet: Fleet, playbook: string, extra: string[] = []): Promise<InfraRun> {
  return runInfra(['apply', join('playbooks', playbook), '-i', fleet.inventoryDir, '--json', ...extra]);
}

/** W1. `-l targets`: the fleet inventory also holds the bastion, which Ansible's does not. */
export async function runInfraExec(fleet: Fleet, cmd: string): Promise<InfraRun> {
  return runInfra(['exec', '-i', fleet.inventoryDir, '-l', 'targets', '--json', '--', cmd]);
}

async function runInfra(args: string[]): Promise<InfraRun> {
  const m = await measure(process.execPath, [INFRA, ...args], { cwd: WORKDIR, timeoutMs: 30 * 60_000 });
  return { m, ...parseEvents(m.stdout) };
}

export function parseEvents(stdout: string): Omit<InfraRun, 'm'> {
  let recap: InfraHostRecap[] = [];
  const execCodes = new Map<string, number>();
  const taskMs = new Map<string, number>();
  const connectedMs = new Map<string, number>();
  const perTask = new Map<string, number[]>();
  const failures = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    let e: { type?: string; host?: string; code?: number; ms?: number; module?: string; task?: string; status?: string; error?: string; recap?: InfraHostRecap[] };
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if (e.type === 'run.end' && e.recap) recap = e.recap;
    else if (e.type === 'exec.output' && e.host) execCodes.set(e.host, e.code ?? -1);
    else if (e.type === 'task.result' && e.host) {
      taskMs.set(e.host, (taskMs.get(e.host) ?? 0) + (e.ms ?? 0));
      const k = e.module ?? '?';
      perTask.set(k, [...(perTask.get(k) ?? []), e.ms ?? 0]);
      if (e.status === 'failed' && !failures.has(e.host)) failures.set(e.host, `${e.task}: ${e.error ?? '?'}`);
    }
    else if (e.type === 'host.connected' && e.host) connectedMs.set(e.host, e.ms ?? 0);
  }
  return { recap, execCodes, taskMs, connectedMs, perTask, failures };
}
