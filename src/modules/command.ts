/**
 * command.run: a shell command, guarded by creates / removes / unless / onlyIf. The guards are
 * evaluated in check() (unless/onlyIf run there: they must only read). Without a guard the
 * plan says so: the command runs every time.
 */
import { z } from 'zod';
import { quote, sh } from '../shell/quote.js';
import { commandFailed } from './run-checked.js';
import { MAX_COMMAND_TIMEOUT_MS } from '../transport/types.js';
import { defineModule, unchanged, type Check } from './types.js';

const commandParams = z
  .object({
    /** Run by `eval` in the session's command shell (never `sh -c`: argv shows in ps, and cmd may hold a secret). */
    cmd: z.string().min(1),
    /** Skip when this path exists. */
    creates: z.string().startsWith('/').optional(),
    /** Skip when this path does not exist. */
    removes: z.string().startsWith('/').optional(),
    /** Skip when this command succeeds. */
    unless: z.string().min(1).optional(),
    /** Run only when this command succeeds. */
    onlyIf: z.string().min(1).optional(),
    /** Working directory. */
    chdir: z.string().startsWith('/').optional(),
    /** 1 ms to 24 h (default 10 min). */
    timeoutMs: z.number().int().positive().max(MAX_COMMAND_TIMEOUT_MS).optional(),
  })
  .strict();
export type CommandParams = z.infer<typeof commandParams>;

export const hasGuard = (p: CommandParams): boolean =>
  p.creates !== undefined || p.removes !== undefined || p.unless !== undefined || p.onlyIf !== undefined;

/** One script printing one word per guard that says "skip": creates / removes / unless / onlyIf. */
export function guardScript(p: CommandParams): string {
  const cd = p.chdir ? sh`cd ${p.chdir} && ` : '';
  const lines: string[] = [];
  if (p.creates) lines.push(sh`[ -e ${p.creates} ] && echo creates`);
  if (p.removes) lines.push(sh`[ -e ${p.removes} ] || echo removes`);
  if (p.unless) lines.push(`(${cd}eval ${quote(p.unless)}) >/dev/null 2>&1 && echo unless`);
  if (p.onlyIf) lines.push(`(${cd}eval ${quote(p.onlyIf)}) >/dev/null 2>&1 || echo onlyIf`);
  lines.push('exit 0');
  return lines.join('\n');
}

export function decideCommand(p: CommandParams, skips: string[]): Check {
  if (!hasGuard(p)) return { changes: [{ what: 'run', to: p.cmd, from: 'always runs (no creates/unless/onlyIf guard)' }], always: true };
  if (skips.includes('creates')) return unchanged(`${p.creates} exists`);
  if (skips.includes('removes')) return unchanged(`${p.removes} does not exist`);
  if (skips.includes('unless')) return unchanged(`unless succeeded: ${p.unless}`);
  if (skips.includes('onlyIf')) return unchanged(`onlyIf failed: ${p.onlyIf}`);
  return { changes: [{ what: 'run', to: p.cmd }] };
}

export const run = defineModule<CommandParams, z.input<typeof commandParams>>({
  name: 'command.run',
  // Path guards only: unless/onlyIf are the user's commands, run when the task comes (never early).
  batchReads: (p) => p.unless === undefined && p.onlyIf === undefined,
  params: commandParams,
  describe: (p) => p.cmd,
  async check(host, p) {
    if (!hasGuard(p)) return decideCommand(p, []);
    const r = await host.run(guardScript(p));
    return decideCommand(p, r.stdout.split(/\s+/).filter(Boolean));
  },
  async apply(host, p) {
    const cd = p.chdir ? sh`cd ${p.chdir} && ` : '';
    const r = await host.run(`${cd}eval ${quote(p.cmd)}`, { timeoutMs: p.timeoutMs });
    if (r.code !== 0) throw commandFailed(`command "${p.cmd}"`, r);
  },
});
