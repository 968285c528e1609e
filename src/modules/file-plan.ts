/**
 * The shared decision for every module that writes a whole file (file, copy, template, line,
 * block, authorizedKey, unit, sysctl): compare what is there with what we want, say what
 * changes, and make it so with one put(). Attribute-only changes are a put() too: a chmod or
 * chown by path would follow a symlink swapped in between check and apply.
 */
import { z } from 'zod';
import { sh } from '../shell/quote.js';
import { PINNED_DIR_FUNCTIONS } from '../shell/pinned-dir.js';
import { chownSpec } from '../transport/files.js';
import { ACCOUNT_HINT, isAccountId } from '../shell/account.js';
import { runChecked } from './run-checked.js';
import { sha256, type FileState } from './file-state.js';
import type { Change, Diff, HostContext } from './types.js';

/** "0644", "644", or a YAML number 644 / 0644 (read as octal digits, as people mean it). */
export const modeSchema = z
  .union([z.string(), z.number().int().nonnegative()])
  .transform((v, ctx) => {
    const s = String(v);
    if (!/^[0-7]{3,4}$/.test(s)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `mode must be octal like "0644", got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return s.padStart(4, '0');
  });

/** owner/group: an account name or a numeric id (a YAML number is an id). */
export const ownerSchema = z
  .union([z.string(), z.number().int().nonnegative().transform(String)])
  .refine(isAccountId, { message: `must be ${ACCOUNT_HINT}` });

/** mode/owner/group accepted by every writer. */
export const attrsShape = {
  mode: modeSchema.optional(),
  owner: ownerSchema.optional(),
  group: ownerSchema.optional(),
};

/** `validate: 'sshd -t -f %s'`: run on the temp file before it replaces the old one. */
export const validateSchema = z
  .string()
  .refine((v) => v.includes('%s'), { message: 'validate must contain %s (the temp file to check)' })
  .optional();

export interface FileAttrs {
  mode?: string;
  owner?: string;
  group?: string;
}

export interface DesiredFile extends FileAttrs {
  path: string;
  content: Buffer;
  validate?: string;
  sensitive?: boolean;
}

export interface FilePlan {
  changes: Change[];
  diff?: Diff;
  /** The file must be (re)written: its content, or only its mode/owner/group, differ. */
  write: boolean;
}

const sameId = (want: string | undefined, name: string | undefined, id: number | undefined): boolean =>
  want === undefined || want === name || want === String(id);

export function attrChanges(state: FileState, want: FileAttrs): Change[] {
  const out: Change[] = [];
  if (want.mode !== undefined && want.mode !== state.mode) out.push({ what: 'mode', from: state.mode, to: want.mode });
  if (!sameId(want.owner, state.owner, state.uid)) out.push({ what: 'owner', from: state.owner, to: want.owner });
  if (!sameId(want.group, state.group, state.gid)) out.push({ what: 'group', from: state.group, to: want.group });
  return out;
}

/** Text for a diff: the content, or a placeholder when it is binary or was not fetched. */
export function diffText(content: Buffer | undefined, state?: FileState): string {
  if (content === undefined) return `<${state?.size ?? '?'} bytes, sha256 ${state?.sha256?.slice(0, 12) ?? '?'}, not fetched>\n`;
  if (content.includes(0)) return `<binary, ${content.length} bytes, sha256 ${sha256(content).slice(0, 12)}>\n`;
  return content.toString('utf8');
}

export function planFile(want: DesiredFile, state: FileState): FilePlan {
  if (state.kind !== 'absent' && state.kind !== 'file' && state.kind !== 'link') {
    throw new Error(`${want.path} is a ${state.kind}, not a regular file`);
  }
  const wantSha = sha256(want.content);
  const sensitive = want.sensitive || undefined;
  if (state.kind === 'absent' || state.kind === 'link') {
    return {
      changes: [{ what: state.kind === 'link' ? 'replace symlink with file' : 'create', to: `${want.content.length} bytes` }],
      diff: { kind: 'file', path: want.path, before: null, after: diffText(want.content), sensitive },
      write: true,
    };
  }
  const attrs = attrChanges(state, want);
  if (state.sha256 !== wantSha) {
    return {
      changes: [{ what: 'content', from: `sha256 ${state.sha256?.slice(0, 12)}`, to: `sha256 ${wantSha.slice(0, 12)}` }, ...attrs],
      diff: { kind: 'file', path: want.path, before: diffText(state.content, state), after: diffText(want.content), sensitive },
      write: true,
    };
  }
  return { changes: attrs, write: attrs.length > 0 };
}

/** The mode a file gets when none is asked for: an existing file keeps its own; a new secret is 0600. */
export function defaultMode(want: DesiredFile, state: FileState): string {
  if (state.kind === 'file' && state.mode) return state.mode;
  return want.sensitive ? '0600' : '0644';
}

/** Makes the file what planFile() compared against. */
export async function applyFile(host: HostContext, want: DesiredFile, state: FileState, plan: FilePlan): Promise<void> {
  if (!plan.write) return;
  const exists = state.kind === 'file';
  await host.put(want.path, want.content, {
    mode: want.mode ?? defaultMode(want, state),
    // Keep the old owner/group unless asked otherwise: a rewrite must not steal a file.
    owner: want.owner ?? (exists ? String(state.uid) : undefined),
    group: want.group ?? (exists ? String(state.gid) : undefined),
    validate: want.validate,
    sensitive: want.sensitive,
  });
}

/**
 * Creates a directory (and missing parents, 0755) when asked, then sets its mode/owner on the
 * pinned directory itself (".", never a path root could be redirected through).
 */
export async function ensureDirectory(host: HostContext, path: string, a: FileAttrs, create: boolean): Promise<void> {
  const steps = [sh`infra_walk ${path} ${create ? 'create' : 'exists'}`];
  const spec = chownSpec(a.owner, a.group);
  if (spec) steps.push(sh`chown -- ${spec} .`);
  // chmod after chown: chown clears setuid/setgid bits.
  if (a.mode !== undefined) steps.push(sh`chmod -- ${a.mode} .`);
  await runChecked(host, `${PINNED_DIR_FUNCTIONS}\n${steps.join(' &&\n')}`, `${create ? 'create' : 'set mode/owner of'} ${path}`);
}

/** Lines of a text file without the trailing empty element; absent → []. */
export function splitLines(content: Buffer | undefined): string[] {
  if (!content || content.length === 0) return [];
  const lines = content.toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export const joinLines = (lines: string[]): Buffer => Buffer.from(lines.length ? `${lines.join('\n')}\n` : '', 'utf8');
