/**
 * The check/apply pair shared by every whole-file writer: probe the path once, compare, write.
 */
import { z } from 'zod';
import { probeCommand, parseProbe, sha256, type FileState, type Fetch } from './file-state.js';
import { applyFile, planFile, type DesiredFile, type FilePlan } from './file-plan.js';
import { readChecked } from './run-checked.js';
import { nonEmpty, unchanged, type Changes, type Check, type HostContext } from './types.js';

export const pathSchema = z
  .string()
  .regex(/^\/./, 'must be an absolute path (and not "/")')
  .refine((p) => !p.includes('\0'), 'must not contain NUL');

/** Files edited in place (line, block) are read whole: up to this size. */
const READ_MAX_BYTES = 64 * 1024 * 1024;

export async function readState(host: HostContext, path: string, fetch: Fetch): Promise<FileState> {
  const r = await readChecked(host, probeCommand(path, fetch), `read ${path}`, { maxOutputBytes: READ_MAX_BYTES });
  return parseProbe(r.stdout);
}

export interface WriteData {
  want: DesiredFile;
  state: FileState;
  plan: FilePlan;
}

/** check() of every whole-file writer once the wanted content is known. */
export async function checkWholeFile(host: HostContext, want: DesiredFile): Promise<Check<WriteData>> {
  const state = await readState(host, want.path, { unlessSha: sha256(want.content) });
  return fileCheck(want, state);
}

export function fileCheck(want: DesiredFile, state: FileState): Check<WriteData> {
  const plan = planFile(want, state);
  if (!nonEmpty(plan.changes)) return unchanged(`${want.path} is up to date`);
  return { changes: plan.changes, diff: plan.diff ? [plan.diff] : undefined, data: { want, state, plan } };
}

export async function applyWholeFile(host: HostContext, c: Changes<WriteData>): Promise<void> {
  const { want, state, plan } = c.data;
  await applyFile(host, want, state, plan);
}

/** Renders a role template; `vars` (task-level) are merged over the host's vars by host.render. */
export function renderTemplate(host: HostContext, src: string, vars?: Record<string, unknown>): Promise<string> {
  return host.render(src, { vars });
}
