/**
 * files.*: whole files (file, copy, template), edits in place (line, block), directories and
 * removal. Every writer takes mode/owner/group and `validate` (run on the temp file by put()).
 * One round trip per check: the probe prints stat + sha256, and the old content only when it
 * differs and is small enough to diff (or when an edit needs it).
 */
import { z } from 'zod';
import { Secret, containsSecret } from '../secrets/secret.js';
import type { FileState } from './file-state.js';
import { applyFile, attrChanges, attrsShape, diffText, ensureDirectory, joinLines, splitLines, validateSchema, type DesiredFile, type FilePlan } from './file-plan.js';
import { applyWholeFile, checkWholeFile, fileCheck, pathSchema, readState, renderTemplate, type WriteData } from './whole-file.js';
import { editBlock, editLine, isValidRegexp } from './line-edit.js';
import { defineModule, nonEmpty, unchanged, type Changes, type Check, type HostContext } from './types.js';

const regexpSchema = z.string().refine(isValidRegexp, 'invalid regular expression (JavaScript syntax)');

const writerShape = {
  ...attrsShape,
  validate: validateSchema,
  /** Mask the diff (passwords, keys). Implied when content is a Secret. */
  sensitive: z.boolean().default(false),
};

// ---------------------------------------------------------------- files.file

const contentSchema = z.union([z.string(), z.instanceof(Secret)]);

const fileParams = z
  .object({
    path: pathSchema,
    /** Literal content (a Secret is written, never shown). */
    content: contentSchema.optional(),
    /** A file of the role: files/<src>. */
    src: z.string().min(1).optional(),
    /** A template of the role: templates/<template>. */
    template: z.string().min(1).optional(),
    /** Extra template variables, merged over the host's vars. */
    vars: z.record(z.unknown()).optional(),
    ...writerShape,
  })
  .strict()
  .refine((p) => [p.content, p.src, p.template].filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of content, src or template',
  });
export type FileParams = z.infer<typeof fileParams>;

/** `secret`: the content holds a secret (a Secret, or a value templated from one): no diff at all. */
async function wantedContent(host: HostContext, p: FileParams): Promise<{ content: Buffer; secret: boolean }> {
  if (p.content !== undefined) {
    const secret = p.content instanceof Secret;
    const content = Buffer.from(secret ? (p.content as Secret).reveal() : (p.content as string), 'utf8');
    return { content, secret: secret || containsSecret(content) };
  }
  if (p.src !== undefined) return { content: await host.roleFile(p.src), secret: false };
  const content = Buffer.from(await renderTemplate(host, p.template as string, p.vars), 'utf8');
  return { content, secret: containsSecret(content) };
}

export const file = defineModule<FileParams, z.input<typeof fileParams>, WriteData>({
  name: 'files.file',
  batchReads: () => true,
  params: fileParams,
  describe: (p) => p.path,
  async check(host, p) {
    const { content, secret } = await wantedContent(host, p);
    return checkWholeFile(host, { ...p, content, sensitive: p.sensitive || secret });
  },
  apply: (host, _p, c) => applyWholeFile(host, c),
});

// ---------------------------------------------------------------- files.copy / files.template

const copyParams = z.object({ src: z.string().min(1), dest: pathSchema, ...writerShape }).strict();
export type CopyParams = z.infer<typeof copyParams>;

export const copy = defineModule<CopyParams, z.input<typeof copyParams>, WriteData>({
  name: 'files.copy',
  batchReads: () => true,
  params: copyParams,
  describe: (p) => p.dest,
  async check(host, p) {
    return checkWholeFile(host, { ...p, path: p.dest, content: await host.roleFile(p.src) });
  },
  apply: (host, _p, c) => applyWholeFile(host, c),
});

const templateParams = z
  .object({ src: z.string().min(1), dest: pathSchema, vars: z.record(z.unknown()).optional(), ...writerShape })
  .strict();
export type TemplateParams = z.infer<typeof templateParams>;

export const template = defineModule<TemplateParams, z.input<typeof templateParams>, WriteData>({
  name: 'files.template',
  batchReads: () => true,
  params: templateParams,
  describe: (p) => p.dest,
  async check(host, p) {
    const content = Buffer.from(await renderTemplate(host, p.src, p.vars), 'utf8');
    return checkWholeFile(host, { ...p, path: p.dest, content, sensitive: p.sensitive || containsSecret(content) });
  },
  apply: (host, _p, c) => applyWholeFile(host, c),
});

// ---------------------------------------------------------------- files.line / files.block

const placementShape = {
  /** Regexp, or "EOF" (default): insert after the last matching line. */
  insertAfter: z.union([z.literal('EOF'), regexpSchema]).optional(),
  /** Regexp, or "BOF": insert before the first matching line. */
  insertBefore: z.union([z.literal('BOF'), regexpSchema]).optional(),
  /** Create the file when it is missing (default false: a missing config file is an error). */
  create: z.boolean().default(false),
};

const lineParams = z
  .object({
    path: pathSchema,
    line: z.string().refine((l) => !l.includes('\n'), 'line must be a single line').optional(),
    /** Replace the last line matching this (JavaScript) regexp; with absent: remove all matches. */
    regexp: regexpSchema.optional(),
    state: z.enum(['present', 'absent']).default('present'),
    ...placementShape,
    ...writerShape,
  })
  .strict()
  .refine((p) => p.state === 'absent' || p.line !== undefined, { message: 'line is required when state is present' })
  .refine((p) => p.line !== undefined || p.regexp !== undefined, { message: 'give line or regexp' })
  .refine((p) => !(p.insertAfter && p.insertBefore), { message: 'give insertAfter or insertBefore, not both' });
export type LineParams = z.infer<typeof lineParams>;

/** An edit's data: the write, or (check mode only) the file it expects an earlier task to create. */
type EditData = WriteData | { missing: string };

const missingError = (path: string): Error => new Error(`${path} does not exist (set create: true to create it)`);

/** check() of an in-place edit: fetch the whole file, edit it locally, compare. */
async function checkEdit(
  host: HostContext,
  p: { path: string; create: boolean; state: 'present' | 'absent'; sensitive: boolean; mode?: string; owner?: string; group?: string; validate?: string },
  edit: (lines: string[]) => string[],
): Promise<Check<EditData>> {
  const state = await readState(host, p.path, 'always');
  if (state.kind === 'link') {
    // Editing "the file" would replace the link with a file holding only the edit (Ubuntu's
    // /etc/resolv.conf), and following it would have root write wherever the link points.
    throw new Error(
      `refusing to edit ${p.path}: it is a symlink to ${state.linkTarget ?? '?'}; files.line/files.block edit regular files only ` +
        `(give the target's path to edit it, or use files.file to replace the link)`,
    );
  }
  if (state.kind !== 'absent' && state.kind !== 'file') throw new Error(`${p.path} is a ${state.kind}, not a regular file`);
  if (state.kind === 'absent') {
    if (p.state === 'absent') return unchanged(`${p.path} does not exist`);
    if (!p.create) {
      // In a plan an earlier task (a package) may create it; in a real run it must exist by now.
      if (host.checkMode) return { changes: [{ what: 'edit', from: 'missing (expected from an earlier task)' }], data: { missing: p.path } };
      throw missingError(p.path);
    }
  }
  const before = splitLines(state.content);
  const content = joinLines(edit(before));
  const want: DesiredFile = { ...p, content, sensitive: p.sensitive || containsSecret(content) };
  if (state.kind === 'file' && state.content && Buffer.compare(state.content, content) === 0) {
    const attrs = attrChanges(state, p);
    const plan: FilePlan = { changes: attrs, write: attrs.length > 0 };
    if (!nonEmpty(attrs)) return unchanged(`${p.path} already ${p.state === 'present' ? 'has' : 'lacks'} it`);
    return { changes: attrs, data: { want, state, plan } };
  }
  return fileCheck(want, state);
}

async function applyEdit(host: HostContext, c: Changes<EditData>): Promise<void> {
  if ('missing' in c.data) throw missingError(c.data.missing);
  await applyFile(host, c.data.want, c.data.state, c.data.plan);
}

export const line = defineModule<LineParams, z.input<typeof lineParams>, EditData>({
  name: 'files.line',
  batchReads: () => true,
  params: lineParams,
  describe: (p) => `${p.path}: ${p.line ?? p.regexp}`,
  check: (host, p) => checkEdit(host, p, (lines) => editLine(lines, p)),
  apply: (host, _p, c) => applyEdit(host, c),
});

const blockParams = z
  .object({
    path: pathSchema,
    block: z.string().default(''),
    marker: z.string().refine((m) => m.includes('{mark}'), 'marker must contain {mark}').default('# {mark} MANAGED BY INFRA'),
    markerBegin: z.string().default('BEGIN'),
    markerEnd: z.string().default('END'),
    state: z.enum(['present', 'absent']).default('present'),
    ...placementShape,
    ...writerShape,
  })
  .strict()
  .refine((p) => !(p.insertAfter && p.insertBefore), { message: 'give insertAfter or insertBefore, not both' });
export type BlockParams = z.infer<typeof blockParams>;

export const block = defineModule<BlockParams, z.input<typeof blockParams>, EditData>({
  name: 'files.block',
  batchReads: () => true,
  params: blockParams,
  describe: (p) => `${p.path} (${p.marker.replace('{mark}', p.markerBegin)})`,
  check: (host, p) => checkEdit(host, p, (lines) => editBlock(lines, p)),
  apply: (host, _p, c) => applyEdit(host, c),
});

// ---------------------------------------------------------------- files.directory

const directoryParams = z.object({ path: pathSchema, ...attrsShape }).strict();
export type DirectoryParams = z.infer<typeof directoryParams>;

export const directory = defineModule<DirectoryParams, z.input<typeof directoryParams>, FileState>({
  name: 'files.directory',
  batchReads: () => true,
  params: directoryParams,
  describe: (p) => p.path,
  async check(host, p) {
    const state = await readState(host, p.path, 'never');
    if (state.kind === 'absent') return { changes: [{ what: 'create directory', to: p.mode }], data: state };
    if (state.kind !== 'directory') throw new Error(`${p.path} is a ${state.kind}, not a directory`);
    const changes = attrChanges(state, p);
    return nonEmpty(changes) ? { changes, data: state } : unchanged(`${p.path} exists`);
  },
  async apply(host, p, c) {
    await ensureDirectory(host, p.path, p, c.data.kind === 'absent');
  },
});

// ---------------------------------------------------------------- files.absent

const absentParams = z.object({ path: pathSchema }).strict();
export type AbsentParams = z.infer<typeof absentParams>;

export const absent = defineModule<AbsentParams, z.input<typeof absentParams>>({
  name: 'files.absent',
  batchReads: () => true,
  params: absentParams,
  describe: (p) => p.path,
  async check(host, p) {
    // "-" never equals a sha256: fetch the old content (if small) to show what goes away.
    const state = await readState(host, p.path, { unlessSha: '-' });
    if (state.kind === 'absent') return unchanged(`${p.path} does not exist`);
    return {
      changes: [{ what: `remove ${state.kind}`, from: p.path }],
      diff: state.kind === 'file' ? [{ kind: 'file', path: p.path, before: diffText(state.content, state), after: null }] : undefined,
    };
  },
  async apply(host, p) {
    await host.remove(p.path);
  },
});
