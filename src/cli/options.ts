/** Options several commands share (CLI wiring only: parsing, no behaviour). */
import { Command, Option, InvalidArgumentError } from 'commander';
import type { RunRequest } from '../engine/run.js';
import type { AdhocRequest } from '../engine/adhoc.js';
import type { KeepaliveOptions } from '../engine/session.js';
import { MAX_COMMAND_TIMEOUT_MS } from '../transport/types.js';

export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** "5m", "30s", "1h", "90" (seconds) → milliseconds; at most 24h (a command's longest timeout). */
export function duration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError('expected a duration like 30s, 5m or 1h');
  const n = Number(m[1]);
  const ms = Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h']);
  if (ms > MAX_COMMAND_TIMEOUT_MS) throw new InvalidArgumentError('at most 24h');
  return ms;
}

/** --timeout: 1s to 24h. There is no "unlimited": a wedged command must end, on the host and here. */
export function commandTimeout(v: string): number {
  const ms = duration(v);
  if (ms < 1000) throw new InvalidArgumentError('a command timeout is 1s to 24h');
  return ms;
}

export function inventoryOption(cmd: Command, required = true): Command {
  const flags = '-i, --inventory <env|path>';
  const what = 'inventory: an environment under inventories/ or a path';
  return (required ? cmd.requiredOption(flags, what) : cmd.option(flags, `${what} (not needed with a plan file)`))
    .option('--vault-password-file <file>', 'vault password file (or INFRA_VAULT_PASSWORD_FILE); id@file for several ids');
}

/** How fast a frozen host is declared unreachable: interval × count (default 15s × 3, or the inventory's). */
function keepaliveOptions(cmd: Command): Command {
  return cmd
    .option('--keepalive-interval <duration>', 'ssh keepalive interval, every host (inventory: keepaliveInterval; default 15s)', keepaliveInterval)
    .option('--keepalive-count <n>', 'missed keepalives before a host is unreachable (inventory: keepaliveCount; default 3)', positiveInt);
}

function keepaliveInterval(v: string): number {
  const ms = duration(v);
  if (ms < 100 || ms > 3_600_000) throw new InvalidArgumentError('expected a duration from 100ms to 1h');
  return ms;
}

function keepalive(o: Record<string, any>): KeepaliveOptions | undefined {
  if (o.keepaliveInterval === undefined && o.keepaliveCount === undefined) return undefined;
  return { intervalMs: o.keepaliveInterval, countMax: o.keepaliveCount };
}

export function runOptions(cmd: Command, inventoryRequired = true): Command {
  return keepaliveOptions(inventoryOption(cmd, inventoryRequired))
    .option('-l, --limit <pattern>', 'hosts: names, groups, globs, a:b, a:&b, a:!b')
    .option('-t, --tags <tags>', 'only tasks with these tags (comma-separated)', (v) => v.split(','))
    .option('--skip-tags <tags>', 'skip tasks with these tags (comma-separated)', (v) => v.split(','))
    .option('-e, --extra-vars <vars>', 'key=value, JSON, or @file.yaml (repeatable; highest precedence)', collect, [])
    .option('--diff', 'show diffs of what changes')
    .option('--forks <n>', 'hosts in parallel', positiveInt, 50)
    .option('--json', 'JSON-lines events on stdout')
    .option('--accept-new', 'record unknown host keys in the inventory known_hosts (changed keys stay fatal)')
    .addOption(new Option('--verify', 'after each change, check again and fail the task if it did not converge'));
}

export function commandLine(): string {
  return ['infra', ...process.argv.slice(2)].join(' ');
}

/** Parsed options of apply / plan / run → the engine's RunRequest (fixed fields win). */
export function runRequest(o: Record<string, any>, fixed: Partial<RunRequest> & Pick<RunRequest, 'mode' | 'control'>): RunRequest {
  return {
    cwd: process.cwd(),
    inventory: o.inventory,
    limit: o.limit,
    tags: o.tags,
    skipTags: o.skipTags,
    extraVars: o.extraVars ?? [],
    vaultPasswordFile: o.vaultPasswordFile,
    check: !!o.check,
    diff: !!o.diff,
    forks: o.forks,
    json: !!o.json,
    acceptNew: !!o.acceptNew,
    verify: !!o.verify,
    lockWaitMs: o.lockWait ?? 0,
    detailedExitcode: !!o.detailedExitcode,
    commandLine: commandLine(),
    keepalive: keepalive(o),
    ...fixed,
  };
}

/** Options of the ad-hoc commands (exec, facts). */
export function adhocOptions(cmd: Command, jsonHelp: string): Command {
  return keepaliveOptions(inventoryOption(cmd))
    .option('-l, --limit <pattern>', 'hosts (default all)')
    .option('--forks <n>', 'hosts in parallel', positiveInt, 50)
    .option('--json', jsonHelp)
    .option('--accept-new', 'record unknown host keys');
}

/** Parsed ad-hoc options → the engine's AdhocRequest. */
export function adhocRequest(o: Record<string, any>): AdhocRequest {
  return {
    cwd: process.cwd(),
    inventory: o.inventory,
    limit: o.limit,
    vaultPasswordFile: o.vaultPasswordFile,
    forks: o.forks,
    json: !!o.json,
    acceptNew: !!o.acceptNew,
    commandLine: commandLine(),
    keepalive: keepalive(o),
  };
}
