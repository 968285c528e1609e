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
 *
 * `read` takes a line byte by byte and GNU `head -c N` reads exactly N bytes from a pipe, so
 * the shell never swallows the next frame. Stdin and output go through private temp files
 * (0600 in a 0700 dir), which makes every payload binary-safe and gives exact byte counts.
 * A response is written with ONE write where it fits (printf, or cat of one file): several
 * small writes meet Nagle + delayed ACK on the target sshd's socket and cost ~40 ms each.
 */
import { quote } from '../shell/quote.js';

export const READY_MARKER = '__INFRA_READY__';
/** Prompt sudo -S prints (to stderr) when, and only when, it wants the become password. */
export const SUDO_PROMPT = '__INFRA_SUDO_PASSWORD__';

export const SESSION_SCRIPT = `d=$(mktemp -d "\${TMPDIR:-/tmp}/infra-session.XXXXXX") || exit 97
trap 'rm -rf "$d"' EXIT
trap '[ -z "$job" ] || kill -TERM "$job" 2>/dev/null; exit 129' HUP INT TERM PIPE
(umask 077 && : >"$d/i" && : >"$d/o" && : >"$d/e" && : >"$d/r" && : >"$d/c") || exit 97
printf '\\n${READY_MARKER} %s\\n' "$(id -u)"
while IFS=' ' read -r id clen ilen tmo kind nl; do
  case "$id$clen$ilen$nl" in ''|*[!0-9]*) echo "infra session: bad frame header" >&2; exit 98;; esac
  if [ "$nl" -gt 0 ]; then
    cmd=
    while [ "$nl" -gt 0 ] && IFS= read -r line; do cmd="$cmd$line
"; nl=$((nl - 1)); done
  else
    cmd=$(head -c "$clen")
  fi
  if [ "$ilen" -gt 0 ]; then head -c "$ilen" >"$d/i"; in=$d/i; else in=/dev/null; fi
  if [ "$kind" = e ]; then
    { eval "$cmd"; } <"$in" >"$d/o" 2>"$d/e"; rc=$?
  else
    printf '%s' "$cmd" >"$d/c"
    timeout -k 5 "$tmo" sh "$d/c" <"$in" >"$d/o" 2>"$d/e" 9>&- & job=$!
    wait "$job"; rc=$?; job=
  fi
  if [ -s "$d/o" ] || [ -s "$d/e" ]; then
    { printf '%s %s\\n' "$id" "$rc"; stat -c %s "$d/o" "$d/e"; cat "$d/o" "$d/e"; } >"$d/r"
    cat "$d/r"
  else
    printf '%s %s\\n0\\n0\\n' "$id" "$rc"
  fi
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
