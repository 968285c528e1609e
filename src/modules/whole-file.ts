/**
 * The check/apply pair shared by every whole-file writer: probe the path once, compare, write.
 */
import { z } from 'zod';
import { probeCommand, parseProbe, sha256, type FileState, type Fetch } from './file-state.js';
import { applyFile, planFile, type DesiredFile, type FilePlan } from './file-plan.js';
import { runChecked } from './run-checked.js';
import { unchanged, type Check, type HostContext } from './types.js';

export const pathSchema = z
  .string()
  .regex(/^\/./, 'must be an absolute path (and not "/")')
  .refine((p) => !p.includes('\0'), 'must not contain NUL');

export async function readState(host: HostContext, path: string, fetch: Fetch): Promise<FileState> {
  const r = await runChecked(host, probeCommand(path, fetch), `read ${path}`);
  return parseProbe(r.stdout);
}

export interface WriteData {
  want: DesiredFile;
  state: FileState;
  plan: FilePlan;
}

/** check() of every whole-file writer once the wanted content is known. */
export async function checkWholeFile(host: HostContext, want: DesiredFile): Promise<Check> {
  const state = await readState(host, want.path, { unlessSha: sha256(want.content) });
  return fileCheck(want, state);
}

export function fileCheck(want: DesiredFile, state: FileState): Check {
  const plan = planFile(want, state);
  const data: WriteData = { want, state, plan };
  if (plan.changes.length === 0) return unchanged(`${want.path} is up to date`, { data });
  return { changes: plan.changes, diff: plan.diff ? [plan.diff] : undefined, data };
}

export async function applyWholeFile(host: HostContext, c: Check): Promise<void> {
  const { want, state, plan } = c.data as WriteData;
  await applyFile(host, want, state, plan);
}

/** Renders a role template; `vars` (task-level) are merged over the host's vars by host.render. */
export function renderTemplate(host: HostContext, src: string, vars?: Record<string, unknown>): Promise<string> {
  return host.render(src, { vars });
}
