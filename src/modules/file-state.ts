/**
 * What a path looks like on the host, read in one command: kind, mode, owner, group, size,
 * sha256, and the content only when it is needed (it differs from what we want and is small,
 * or the caller edits it in place).
 */
import { createHash } from 'node:crypto';
import { quote, sh, type ShellFragment } from '../shell/quote.js';

export type FileKind = 'absent' | 'file' | 'directory' | 'link' | 'other';

export interface FileState {
  kind: FileKind;
  /** Four octal digits, e.g. "0644". */
  mode?: string;
  owner?: string;
  group?: string;
  uid?: number;
  gid?: number;
  size?: number;
  sha256?: string;
  /** undefined when not fetched. */
  content?: Buffer;
  /** Where a symlink points (kind "link"). */
  linkTarget?: string;
}

/** Files larger than this are not fetched for a diff. */
export const DIFF_FETCH_LIMIT = 256 * 1024;

/**
 * - `{ unlessSha }`: fetch only when the file's sha256 differs from this one and it is small;
 * - `'always'`: fetch whatever the size (line/block edits need the whole file);
 * - `'never'`.
 */
export type Fetch = { unlessSha: string } | 'always' | 'never';

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** Shell text that prints the state of the path held in "$p" (see parseProbe). */
function probeBody(fetch: Fetch): string {
  let fetchCmd = '';
  if (fetch === 'always') fetchCmd = `printf 'content:'; base64 -w0 < "$p"; echo`;
  else if (fetch !== 'never') {
    fetchCmd = sh`if [ "$s" != ${fetch.unlessSha} ] && [ "\${st##* }" -le ${DIFF_FETCH_LIMIT} ]; then printf 'content:'; base64 -w0 < "$p"; echo; fi`;
  }
  return [
    `if [ -L "$p" ]; then k=link; elif [ -d "$p" ]; then k=directory; elif [ -f "$p" ]; then k=file; elif [ -e "$p" ]; then k=other; else k=absent; fi`,
    `if [ "$k" = absent ]; then echo absent; else`,
    // Forks kept to the minimum (these run for every file task on every run): stat once (its
    // size is the last field), sha256sum without a pipe (the name "-" cut by the shell).
    `  st=$(stat -c '%a %U %G %u %g %s' -- "$p"); printf '%s %s\\n' "$k" "$st"`,
    `  if [ "$k" = link ]; then printf 'target:'; readlink -- "$p"; fi`,
    // Fetched whole: the controller hashes the content itself (one fork less).
    fetch === 'always'
      ? `  if [ "$k" = file ]; then ${fetchCmd}; fi`
      : `  if [ "$k" = file ]; then s=$(sha256sum < "$p"); s=\${s%% *}; echo "$s"; ${fetchCmd || ':'}; fi`,
    `fi`,
  ].join('\n');
}

/** One command that prints the state of `path`. */
export function probeCommand(path: string, fetch: Fetch = 'never'): string {
  return `p=${quote(path)}\n${probeBody(fetch)}`;
}

/** Same, for a path computed by the shell (e.g. `"$h/.ssh/authorized_keys"`). */
export function probeCommandFor(pathExpr: ShellFragment, fetch: Fetch = 'never'): string {
  return `p=${pathExpr.text}\n${probeBody(fetch)}`;
}

export function parseProbe(text: string): FileState {
  const lines = text.split('\n').filter((l, i) => i === 0 || l !== '');
  const head = (lines[0] ?? '').trim();
  if (head === 'absent') return { kind: 'absent' };
  const f = head.split(' ');
  if (f.length < 7) throw new Error(`unexpected file probe output: ${JSON.stringify(text.slice(0, 200))}`);
  const [kind, mode, owner, group, uid, gid, size] = f;
  const state: FileState = {
    kind: kind as FileKind,
    mode: mode.padStart(4, '0'),
    owner,
    group,
    uid: Number(uid),
    gid: Number(gid),
    size: Number(size),
  };
  if (kind === 'link') {
    const target = lines.find((l) => l.startsWith('target:'));
    if (target !== undefined) state.linkTarget = target.slice('target:'.length);
  }
  if (kind === 'file') {
    const content = lines.find((l) => l.startsWith('content:'));
    if (content !== undefined) state.content = Buffer.from(content.slice('content:'.length).trim(), 'base64');
    // Without a hash line the content was fetched whole ('always').
    state.sha256 = lines[1]?.startsWith('content:') && state.content ? sha256(state.content) : lines[1]?.trim();
  }
  return state;
}
