/**
 * The shell side of the session protocol: one POSIX `sh` per host running a read loop.
 *
 * Request frame (controller → shell):
 *   "<id> <cmdLen> <stdinLen> <timeoutSec> <kind> <cmdLines>\n" <cmd bytes> <stdin bytes>
 *   cmdLines > 0: the command is that many "\n"-terminated lines, read with the `read`
 *   builtin (no fork: most commands are short); 0: exactly cmdLen bytes read by `head -c`.
 *   kind "c": run in a child `sh` under coreutils `timeout` (exit 124 on timeout), the lock
 *   fd closed (9>&-), so `exit 3` or a crash only ends that child. The child reads the
 *   command from a private file, not from `sh -c <cmd>`: argv is world-readable (ps), and a
 *   command may carry a secret.
 *   The child runs as an async job the shell `wait`s for: a signal to the session shell
 *   (abort: the controller sends TERM) interrupts the wait at once, and the trap TERMs
 *   `timeout`, which passes it to the command's whole process group (KILL 5 s later).
 *   kind "e": `eval` in the session shell itself (only for the run lock: its fd must live as
 *   long as the session).
 * Response frame (shell → controller):
 *   "<id> <exit code>\n<stdoutLen>\n<stderrLen>\n" <stdout bytes> <stderr bytes>
 *   or "<id> !<what>\n0\n0\n" when the shell could not store the command, its input or its
 *   output files (a full or removed temp dir): the command was NOT run.
 *
 * The protocol never lies about bytes:
 *  - every write of the command and input files is checked (the input's size too: a stream cut
 *    short must not run a command on half its input); the input is read through `tee`, which
 *    consumes all of it even when the file write fails, so the stream stays in sync;
 *  - a command's output files are held open (fds 5 and 6) from before it starts: sizes are
 *    measured on those fds and exactly that many bytes are sent (`head -c`), so a background
 *    process that keeps writing, or a task that removes the files, cannot break the framing;
 *  - files are per command generation: the command runs in its own process group (under
 *    `timeout`), and when something it started outlives it (it could still write our output
 *    files or read our input file), the next command gets new files (fresh inodes) and the
 *    old names are removed. Reusing files otherwise keeps inode churn off the per-command path;
 *  - a task that removes the session dir (cleaning /tmp) gets the next command a new one.
 * Files are truncated after use (the input at once: it may hold a secret).
 * `command :`/`command exec`: a failed redirection of a special builtin would end the shell.
 *
 * `read` takes a line byte by byte and GNU `head -c N` reads exactly N bytes from a pipe, so
 * the shell never swallows the next frame. A response is written with ONE write where it fits
 * (printf, or cat of one file): several small writes meet Nagle + delayed ACK on the target
 * sshd's socket and cost ~40 ms each. Responses over 64 KiB are streamed (no copy on disk).
 */
import { quote } from '../shell/quote.js';

export const READY_MARKER = '__INFRA_READY__';
/** Prompt sudo -S prints (to stderr) when, and only when, it wants the become password. */
export const SUDO_PROMPT = '__INFRA_SUDO_PASSWORD__';

/** Why a command was not run, as the shell reports it ("<id> !<what>"). */
export const NOT_RUN = {
  dir: 'create its temp directory',
  input: "store the command's input",
  output: 'create the output files',
  command: 'store the command',
} as const;
export type NotRunReason = keyof typeof NOT_RUN;

/** Responses up to this size are copied to one file and written at once (see above). */
const ONE_WRITE_MAX = 65536;

export const SESSION_SCRIPT = `newdir() { mktemp -d "\${TMPDIR:-/tmp}/infra-session.XXXXXX"; }
d=$(newdir) || exit 97
g=0 tp=
trap 'rm -rf "$d"' EXIT
trap '[ -z "$tp" ] || kill -TERM "$tp" 2>/dev/null; exit 129' HUP INT TERM PIPE
uid=; while read -r uk ur ue _; do [ "$uk" = Uid: ] && { uid=$ue; break; }; done </proc/self/status
printf '\\n${READY_MARKER} %s\\n' "\${uid:-$(id -u)}"
while IFS=' ' read -r id clen ilen tmo kind nl; do
  case "$id$clen$ilen$nl" in ''|*[!0-9]*) echo "infra session: bad frame header" >&2; exit 98;; esac
  if [ "$nl" -gt 0 ]; then
    cmd=
    while [ "$nl" -gt 0 ] && IFS= read -r line; do cmd="$cmd$line
"; nl=$((nl - 1)); done
  else
    cmd=$(head -c "$clen")
  fi
  f=
  [ -d "$d" ] || { nd=$(newdir) && d=$nd; } || f=dir
  o=$d/$g.o e=$d/$g.e in=/dev/null
  if [ "$ilen" -gt 0 ]; then
    in=$d/$g.i
    head -c "$ilen" | tee -- "$in" >/dev/null 2>&1 && [ "$(stat -c %s -- "$in")" = "$ilen" ] || f=\${f:-input}
  fi
  [ -n "$f" ] || { command : >"$o" && command : >"$e" && command exec 5<"$o" 6<"$e"; } 2>/dev/null || f=output
  [ -n "$f" ] || [ "$kind" = e ] || printf '%s' "$cmd" 2>/dev/null >"$d/c" || f=command
  if [ -n "$f" ]; then
    printf '%s !%s\\n0\\n0\\n' "$id" "$f"
  else
    if [ "$kind" = e ]; then
      { eval "$cmd"; } <"$in" >"$o" 2>"$e"; rc=$?
    else
      timeout -k 5 "$tmo" sh "$d/c" <"$in" >"$o" 2>"$e" 5<&- 6<&- 9>&- & tp=$!
      wait "$tp"; rc=$?
    fi
    if [ -s /proc/self/fd/5 ] || [ -s /proc/self/fd/6 ]; then
      set -- $(stat -L -c %s /proc/self/fd/5 /proc/self/fd/6)
      if [ $(($1 + $2)) -le ${ONE_WRITE_MAX} ] && { printf '%s %s\\n%s\\n%s\\n' "$id" "$rc" "$1" "$2" && { [ "$1" = 0 ] || head -c "$1" /proc/self/fd/5; } && { [ "$2" = 0 ] || head -c "$2" /proc/self/fd/6; }; } 2>/dev/null >"$d/r"; then
        cat -- "$d/r"
      else
        printf '%s %s\\n%s\\n%s\\n' "$id" "$rc" "$1" "$2"; [ "$1" = 0 ] || head -c "$1" /proc/self/fd/5; [ "$2" = 0 ] || head -c "$2" /proc/self/fd/6
      fi
      command : 2>/dev/null >"$o"; command : 2>/dev/null >"$e"
    else
      printf '%s %s\\n0\\n0\\n' "$id" "$rc"
    fi
    exec 5<&- 6<&-
  fi
  [ "$in" = /dev/null ] || command : 2>/dev/null >"$in"
  if [ "$kind" != e ] && [ -n "$tp" ] && kill -0 -"$tp" 2>/dev/null; then rm -f -- "$d/$g".[oei]; g=$id; fi
  tp=
done
`;

export type Become = false | 'sudo';

/** argv that starts the session shell locally (no login shell in between). */
export function sessionArgv(become: Become, withPassword: boolean): string[] {
  if (!become) return ['sh', '-c', SESSION_SCRIPT];
  return withPassword
    ? ['sudo', '-S', '-k', '-p', SUDO_PROMPT, 'sh', '-c', SESSION_SCRIPT]
    : ['sudo', '-n', 'sh', '-c', SESSION_SCRIPT];
}

/** The same as one command line for an ssh exec request (run by the user's login shell). */
export function sessionCommandLine(become: Become, withPassword: boolean): string {
  return 'exec ' + sessionArgv(become, withPassword).map(quote).join(' ');
}
