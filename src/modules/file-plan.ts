/**
 * The shared decision for every module that writes a whole file (file, copy, template, line,
 * block, authorizedKey, unit, sysctl): compare what is there with what we want, say what
 * changes, and make it so with one put() (content) or one chmod/chown (attributes only).
 */
import { z } from 'zod';
import { sh } from '../shell/quote.js';
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

export const ownerSchema = z.union([z.string().min(1), z.number().int().nonnegative().transform(String)]);

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
  /** Content must be (re)written. */
  write: boolean;
  /** Only mode/owner/group differ. */
  attrs: boolean;
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
      attrs: false,
    };
  }
  const attrs = attrChanges(state, want);
  if (state.sha256 !== wantSha) {
    return {
      changes: [{ what: 'content', from: `sha256 ${state.sha256?.slice(0, 12)}`, to: `sha256 ${wantSha.slice(0, 12)}` }, ...attrs],
      diff: { kind: 'file', path: want.path, before: diffText(state.content, state), after: diffText(want.content), sensitive },
      write: true,
      attrs: false,
    };
  }
  return { changes: attrs, write: false, attrs: attrs.length > 0 };
}

/** Makes the file what planFile() compared against. */
export async function applyFile(host: HostContext, want: DesiredFile, state: FileState, plan: FilePlan): Promise<void> {
  const exists = state.kind === 'file';
  if (plan.write) {
    await host.put(want.path, want.content, {
      mode: want.mode ?? (exists ? state.mode : '0644'),
      // Keep the old owner/group unless asked otherwise: a rewrite must not steal a file.
      owner: want.owner ?? (exists ? String(state.uid) : undefined),
      group: want.group ?? (exists ? String(state.gid) : undefined),
      validate: want.validate,
    });
  } else if (plan.attrs) {
    await setAttrs(host, want.path, want);
  }
}

export async function setAttrs(host: HostContext, path: string, a: FileAttrs): Promise<void> {
  const cmds: string[] = [];
  if (a.owner !== undefined) cmds.push(sh`chown ${a.owner} -- ${path}`);
  if (a.group !== undefined) cmds.push(sh`chgrp ${a.group} -- ${path}`);
  // chmod last: chown clears setuid/setgid bits.
  if (a.mode !== undefined) cmds.push(sh`chmod ${a.mode} -- ${path}`);
  if (cmds.length > 0) await runChecked(host, cmds.join(' && '), `set mode/owner of ${path}`);
}

/** Lines of a text file without the trailing empty element; absent → []. */
export function splitLines(content: Buffer | undefined): string[] {
  if (!content || content.length === 0) return [];
  const lines = content.toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export const joinLines = (lines: string[]): Buffer => Buffer.from(lines.length ? `${lines.join('\n')}\n` : '', 'utf8');
