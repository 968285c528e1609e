/**
 * What a write replaces is kept, for `infra rollback` (src/rollback). In the same script as
 * the write — right before the rename, or the removal — the old file is copied with `cp -a`
 * (same bytes, owner, mode; a symlink stays a link, a directory a tree) into the run's area on
 * the host, and one line is appended to the run's manifest saying what was there and what
 * replaces it. No extra round trip; a write whose old file cannot be kept does not happen.
 *
 * The area: /var/lib/infra/runs/<run-id>/ for a root session, else
 * ${XDG_STATE_HOME:-~/.local/state}/infra/runs/<run-id>/; root-only (0700, made under umask
 * 077), so a secret-bearing file kept there is readable by root alone, whatever its own mode.
 *   files/<path>     the copy of what was at <path> before the run first wrote it
 *   manifest.jsonl   one JSON object per line: the run (first line), each file written, each task
 */
import { posix } from 'node:path';
import { quote, sh } from '../shell/quote.js';
import { PINNED_DIR_FUNCTIONS } from '../shell/pinned-dir.js';
import { SESSION_UID } from './session-script.js';

export interface KeepOptions {
  /** The run whose area keeps the copy. */
  runId: string;
  /** The manifest's first line (who, when, what), written when the area is made. */
  header: string;
  /** The task's number in this run on this host: the manifest's lines about the task name it. */
  task: number;
  /** An earlier write of this run replaced this path already: what was there before the run is kept. */
  seen: boolean;
}

/** Recorded with the path, from the write's own options. */
export interface KeptAttrs {
  /** Its content holds a secret, so a rollback never shows it. */
  sensitive?: boolean;
  /** A rollback validates the file it puts back the same way. */
  validate?: string;
}

/** Exit code of a script that could not keep the old file (nothing was changed). */
export const KEEP_FAILED = 82;

export const MANIFEST = 'manifest.jsonl';

/** Sets $infra_runs: where the runs' areas live for this session's user. */
export const RUNS_DIR = `if [ "${SESSION_UID}" = 0 ]; then infra_runs=/var/lib/infra/runs; else infra_runs="\${XDG_STATE_HOME:-$HOME/.local/state}/infra/runs"; fi`;

/** Run ids are made by the session (8 hex digits); anything else must never name a directory. */
export const RUN_ID = /^[0-9a-f]{8}$/;

/**
 * Sets $infra_k to the run's area, making it (root-only, with its header line) when missing.
 * Exits KEEP_FAILED when it cannot.
 */
export function openArea(runId: string, header: string): string {
  if (!RUN_ID.test(runId)) throw new Error(`bug: ${JSON.stringify(runId)} is not a run id`);
  if (header.includes('\n')) throw new Error('bug: a manifest line cannot contain a newline');
  return [
    RUNS_DIR,
    `infra_k="$infra_runs/${runId}"`,
    `if [ ! -d "$infra_k" ]; then`,
    sh`  (umask 077 && mkdir -p -- "$infra_k" && chmod 0700 -- "$infra_runs" && printf '%s\\n' ${header} >>"$infra_k/${MANIFEST}") || exit ${KEEP_FAILED}`,
    'fi',
  ].join('\n');
}

/** Prints the JSON state of the path $1: null, or its kind (and, for a file, sha256, mode, ids, size). */
const STATE_FUNCTION = `infra_state() {
  if [ -L "$1" ]; then printf '{"kind":"link"}'
  elif [ -f "$1" ]; then
    infra_h=$(sha256sum <"$1") && infra_st=$(stat -c '%a %u %g %s' -- "$1") || return 1
    set -- $infra_st
    printf '{"kind":"file","sha256":"%s","mode":"%s","uid":%s,"gid":%s,"size":%s}' "\${infra_h%% *}" "$1" "$2" "$3" "$4"
  elif [ -d "$1" ]; then printf '{"kind":"directory"}'
  elif [ -e "$1" ]; then printf '{"kind":"other"}'
  else printf null; fi
}`;

/**
 * The shell that keeps `./$<name>` (in the pinned directory of `path`) before it is replaced
 * by `./$<next>` or removed (no next): copies it on the run's first write of the path, then
 * appends the manifest line. `name`/`next` are the script's variable names holding the entries.
 */
export function keepStep(path: string, keep: KeepOptions, name: string, next?: string, attrs: KeptAttrs = {}): string {
  const line = JSON.stringify({
    t: 'file',
    task: keep.task,
    path,
    ...(attrs.sensitive ? { sensitive: true } : {}),
    ...(attrs.validate ? { validate: attrs.validate } : {}),
  });
  const copy = posix.join('/files', path);
  return [
    STATE_FUNCTION,
    openArea(keep.runId, keep.header),
    `infra_b=$(infra_state "./$${name}") || exit ${KEEP_FAILED}`,
    next ? `infra_a=$(infra_state "./$${next}") || exit ${KEEP_FAILED}` : 'infra_a=null',
    ...(keep.seen
      ? []
      : [
          `if [ "$infra_b" != null ]; then`,
          `  (umask 077 && mkdir -p -- "$infra_k"${quote(posix.dirname(copy))} && cp -a -- "./$${name}" "$infra_k"${quote(copy)}) || exit ${KEEP_FAILED}`,
          'fi',
        ]),
    sh`printf '%s,"before":%s,"after":%s}\\n' ${line.slice(0, -1)} "$infra_b" "$infra_a" >>"$infra_k/${MANIFEST}" || exit ${KEEP_FAILED}`,
  ].join('\n');
}

/** The script that appends one line (a task's record) to the run's manifest, making the area when missing. */
export function appendScript(runId: string, header: string, line: string): string {
  if (line.includes('\n')) throw new Error('bug: a manifest line cannot contain a newline');
  return [openArea(runId, header), sh`printf '%s\\n' ${line} >>"$infra_k/${MANIFEST}" || exit ${KEEP_FAILED}`].join('\n');
}

/**
 * Retention: keeps the newest `runs` areas (by their manifest's time) and none older than
 * `days`, never the current run's; prints "pruned <id>" per area removed, then the kB the
 * remaining areas use.
 */
export function pruneScript(current: string, runs: number, days: number): string {
  if (!RUN_ID.test(current)) throw new Error(`bug: ${JSON.stringify(current)} is not a run id`);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(days) || days < 1) throw new Error('bug: retention must be positive integers');
  return [
    RUNS_DIR,
    'cd -- "$infra_runs" 2>/dev/null || { echo 0; exit 0; }',
    'now=$(date +%s) n=0',
    // Run ids are 8 hex digits: no other name is ever removed.
    `for m in $(ls -1t -- ????????/${MANIFEST} 2>/dev/null); do`,
    '  d=${m%%/*}',
    `  [ "$m" = "$d/${MANIFEST}" ] && [ \${#d} -eq 8 ] || continue`,
    '  case "$d" in *[!0-9a-f]*) continue ;; esac',
    '  n=$((n + 1))',
    `  [ "$d" = ${current} ] && continue`,
    '  t=$(stat -c %Y -- "$m") || continue',
    `  if [ "$n" -gt ${runs} ] || [ $((now - t)) -gt ${days * 86400} ]; then rm -rf -- "./$d" && echo "pruned $d"; fi`,
    'done',
    'du -sk . | cut -f1',
  ].join('\n');
}

/** Prints, for each run area of the host, "@@ <id> <kB>" and then its manifest. */
export function historyScript(): string {
  return [
    RUNS_DIR,
    'cd -- "$infra_runs" 2>/dev/null || exit 0',
    `for m in ????????/${MANIFEST}; do`,
    '  [ -f "$m" ] || continue',
    '  d=${m%%/*}',
    '  printf \'@@ %s %s\\n\' "$d" "$(du -sk -- "$d" | cut -f1)"',
    '  cat -- "$m"',
    'done',
  ].join('\n');
}

/** Exit code of manifestScript when the host keeps nothing of that run. */
export const NOT_KEPT = 66;

/** Prints the runs directory (first line), then the manifest of one run; exits NOT_KEPT when there is none. */
export function manifestScript(runId: string): string {
  if (!RUN_ID.test(runId)) throw new Error(`bug: ${JSON.stringify(runId)} is not a run id`);
  return [RUNS_DIR, `printf '%s\\n' "$infra_runs"`, `[ -f "$infra_runs/${runId}/${MANIFEST}" ] || exit ${NOT_KEPT}`, `cat -- "$infra_runs/${runId}/${MANIFEST}"`].join('\n');
}

/** The shell path (to be used inside double quotes after $infra_runs) of a kept copy. */
export function keptCopy(runId: string, path: string): string {
  if (!RUN_ID.test(runId)) throw new Error(`bug: ${JSON.stringify(runId)} is not a run id`);
  return `/${runId}${posix.join('/files', path)}`;
}

/** Prints the JSON state of each path given as an argument, one per line (for conflict checks). */
export function stateScript(paths: string[]): string {
  return [STATE_FUNCTION, sh`for p in ${paths}; do infra_state "$p" || printf null; echo; done`].join('\n');
}

/**
 * Puts back a kept symlink or directory tree (what put() cannot write) with `cp -a`, through
 * the pinned parent directory, onto a path that no longer exists (the caller removed what was
 * there with remove(), which kept it). A temp name first, then a rename: never half a tree.
 */
export function copyBackScript(copy: string, path: string): string {
  if (!path.startsWith('/') || path === '/' || posix.normalize(path) !== path) throw new Error(`bug: ${JSON.stringify(path)} is not a normalized absolute path`);
  return [
    PINNED_DIR_FUNCTIONS,
    sh`infra_walk ${posix.dirname(path)}`,
    sh`n=${posix.basename(path)} t=${`.${posix.basename(path)}.infra-restore`}`,
    'if [ -e "./$n" ] || [ -L "./$n" ]; then echo "$PWD/$n exists" >&2; exit 1; fi',
    `trap 'rm -rf -- "./$t"' EXIT`,
    sh`rm -rf -- "./$t" && cp -a -- ${copy} "./$t" && mv -T -- "./$t" "./$n" || exit 1`,
    'trap - EXIT',
  ].join('\n');
}
