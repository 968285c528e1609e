/**
 * The host side of the session protocol: one `perl` per host (perl-base is Essential on Debian
 * and Ubuntu) running a read loop. Perl, not a POSIX sh loop: it frames, times and measures a
 * command with system calls, so a command costs the host one fork + exec of `sh`, where a sh
 * loop needed coreutils for each step (timeout, stat, head, cat: ≈ 6 processes per command).
 *
 * Request frame (controller → host):
 *   "<id> <cmdLen> <stdinLen> <timeoutSec> <kind>\n" <cmd bytes> <stdin bytes>
 *   kind "c": the command runs in a child `sh` reading it from a private file (not `sh -c`:
 *   argv is world-readable, and a command may carry a secret), in its own process group, with
 *   its input and outputs in files, INFRA_UID and INFRA_NOW (its start, epoch seconds) in its
 *   environment; `exit 3` or a crash only ends that child. On timeout the
 *   group gets TERM (exit 124), KILL 5 s later (exit 137).
 *   kind "l": take the run lock; cmd is the seconds to wait for it, stdin the holder's metadata
 *   (see lock.ts). The lock's descriptor is the session's own: it lives exactly as long as the
 *   session, and no command inherits it (perl's descriptors are close-on-exec).
 * Response frame (host → controller):
 *   "<id> <exit code>\n<stdoutLen>\n<stderrLen>\n" <stdout bytes> <stderr bytes>
 *   or "<id> !<what>\n0\n0\n" when the command was NOT run (see NOT_RUN).
 * A signal to the session (abort: the controller sends TERM) TERMs the running command's group
 * (KILL 5 s later) and ends the session.
 *
 * The protocol never lies about bytes:
 *  - a stream cut short mid-frame runs nothing (the command would see half its input);
 *  - a command's outputs are measured on descriptors held from before it starts, and exactly
 *    those many bytes are sent: a background process that keeps writing, or a task that removes
 *    the files, cannot break the framing;
 *  - when something a command started outlives it (it could still write our output files or
 *    read our input file), the next command gets new files; otherwise files are reused;
 *  - a task that removes the session dir (cleaning /tmp) gets the next command a new one.
 * The command and input files are truncated after use (they may hold a secret).
 * A response up to 1 MiB is written with ONE write: several small writes meet Nagle + delayed
 * ACK on the target sshd's socket and cost ~40 ms each. Larger ones are streamed.
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
  fork: 'start a process for it',
} as const;
export type NotRunReason = keyof typeof NOT_RUN;

/** The loop's source as written (comments and indentation dropped when sent: it travels in every session's exec request). */
const SESSION_PERL = String.raw`# No modules: Fcntl, strict and Errno would triple the start-up. Linux's numbers instead
# (the same on x86 and ARM): O_WRONLY 1, O_CREAT 64, O_EXCL 128, O_TRUNC 512, O_NONBLOCK 2048,
# F_SETFL 4, LOCK_EX 2, LOCK_NB 4, EEXIST 17, WNOHANG 1.
my ($d, $g, $pid, $rc, $lock) = (undef, 0, 0, 0, undef);
my $tmp = $ENV{TMPDIR} || '/tmp';
# A private directory for the command, its input and outputs: mkdir fails on any existing name.
sub newdir {
  for (1 .. 100) {
    my $p = sprintf '%s/infra-session.%08x', $tmp, int rand 4294967295;
    return $p if mkdir $p, 0700;
    return undef unless $! == 17;
  }
  undef;
}
sub cleanup {
  return unless defined $d && opendir my $dh, $d;
  unlink map { "$d/$_" } grep { !/^\.\.?\z/ } readdir $dh;
  closedir $dh;
  rmdir $d;
}
sub out {
  my $b = shift;
  for (my $o = 0; $o < length $b;) {
    my $n = syswrite STDOUT, $b, length($b) - $o, $o;
    exit 129 unless $n;
    $o += $n;
  }
}
sub wr {
  my ($p, $b) = @_;
  sysopen my $fh, $p, 577, 0600 or return 0;
  for (my $o = 0; $o < length $b;) {
    my $n = syswrite $fh, $b, length($b) - $o, $o;
    return 0 unless $n;
    $o += $n;
  }
  close $fh;
}
sub take {
  my ($n, $b) = (shift, '');
  while (length $b < $n) { read(STDIN, $b, $n - length $b, length $b) or return undef }
  $b;
}
sub slurp {
  my ($fh, $n) = @_;
  my $b = '';
  while (length $b < $n) { sysread($fh, $b, $n - length $b, length $b) or last }
  $b;
}
# A SIGCHLD writes to this pipe: waiting is a select on it, with a fractional timeout.
pipe my $sr, my $sw or exit 97;
fcntl $sw, 4, 2048;
$SIG{CHLD} = sub { syswrite $sw, 'x' };
# Waits up to $t seconds for the child; true when it has ended (its exit code in $rc).
# Perl runs a handler only between statements: a SIGCHLD landing after waitpid but before the
# select is seen only once select returns. So select waits in slices of 0.1 s at most: a lost
# wake-up costs one slice, not the command's whole timeout.
sub waitfor {
  my $t = shift;
  for (;;) {
    my $r = waitpid $pid, 1;
    if ($r == $pid) { $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8; return 1 }
    if ($r < 0) { $rc = 255; return 1 }
    return 0 if $t <= 0;
    my $rin = '';
    vec($rin, fileno $sr, 1) = 1;
    my $s = $t < 0.1 ? $t : 0.1;
    my ($n, $left) = select $rin, undef, undef, $s;
    $t -= $s - $left;
    sysread $sr, my $x, 512 if $n > 0;
  }
}
sub stop {
  $SIG{$_} = 'IGNORE' for qw(TERM HUP INT PIPE);
  if ($pid) { kill 'TERM', -$pid; waitfor(5) or kill 'KILL', -$pid }
  cleanup();
  exit 129;
}
$SIG{$_} = \&stop for qw(TERM HUP INT PIPE);
# The run lock: held on a descriptor of this process, so exactly as long as the session.
sub takelock {
  my ($wait, $meta) = @_;
  my $f;
  if ($> == 0) {
    mkdir '/run/infra', 0755 unless -d '/run/infra';
    $f = '/run/infra/lock';
  } else {
    $f = ($ENV{XDG_RUNTIME_DIR} || '/tmp') . "/infra-$>.lock";
  }
  open my $fh, '>>', $f or return (1, '', "cannot open $f: $!\n");
  until (flock $fh, 6) {
    if ($wait <= 0) {
      close $fh;
      open my $m, '<', "$f.json" or return (75, '', '');
      local $/;
      return (75, scalar(<$m>) // '', '');
    }
    select undef, undef, undef, 0.1;
    $wait -= 0.1;
  }
  $lock = $fh;
  # root's lock.json is in a directory only root writes; anyone else's in a shared one: a
  # fresh file (O_EXCL) moved over the old, so a planted link is never followed.
  my $j = $> == 0 ? "$f.json" : "$f.json.new";
  unlink $j if $> != 0;
  my $m;
  sysopen $m, $j, $> == 0 ? 577 : 705, 0600
    and (syswrite($m, $meta) // -1) == length $meta and close $m
    and ($> == 0 or rename $j, "$f.json")
    or return (1, '', "cannot write $f.json: $!\n");
  (0, '', '');
}
$ENV{INFRA_UID} = $>;
$d = newdir() // exit 97;
out("\n${READY_MARKER} $>\n");
while (defined(my $h = <STDIN>)) {
  my ($id, $clen, $ilen, $tmo, $kind) = $h =~ /^(\d+) (\d+) (\d+) (\d+(?:\.\d+)?) ([cl])\n\z/
    or do { print STDERR "infra session: bad frame header\n"; cleanup(); exit 98 };
  my $cmd = take($clen);
  my $input = defined $cmd ? take($ilen) : undef;
  # The stream ended mid-frame: nothing runs on half its input.
  unless (defined $input) { out("$id !input\n0\n0\n"); last }
  if ($kind eq 'l') {
    my ($code, $o, $e) = takelock($cmd, $input);
    out("$id $code\n" . length($o) . "\n" . length($e) . "\n$o$e");
    next;
  }
  my $f = '';
  my @st = lstat $d;
  unless (@st && -d _ && $st[4] == $>) {
    my $n = newdir();
    if (defined $n) { $d = $n } else { $f = 'dir' }
  }
  my ($o, $e, $i, $c) = ("$d/$g.o", "$d/$g.e", "$d/$g.i", "$d/c");
  my $in = '/dev/null';
  if (!$f && $ilen > 0) { $in = $i; $f = 'input' unless wr($i, $input) }
  my ($wo, $we, $ro, $re);
  $f = 'output' unless $f || sysopen($wo, $o, 577, 0600) && sysopen($we, $e, 577, 0600)
    && open($ro, '<', $o) && open($re, '<', $e);
  $f = 'command' unless $f || wr($c, $cmd);
  $f = 'fork' unless $f || defined($pid = fork);
  if ($f) {
    out("$id !$f\n0\n0\n");
  } else {
    if ($pid == 0) {
      setpgrp 0, 0;
      $ENV{INFRA_NOW} = time;
      $SIG{$_} = 'DEFAULT' for qw(TERM HUP INT PIPE CHLD);
      open(STDIN, '<', $in) && open(STDOUT, '>&', $wo) && open(STDERR, '>&', $we) or exit 126;
      exec { 'sh' } 'sh', $c;
      exit 127;
    }
    setpgrp $pid, $pid;
    close $wo;
    close $we;
    my $code;
    if (waitfor($tmo)) {
      $code = $rc;
    } else {
      kill 'TERM', -$pid;
      if (waitfor(5)) { $code = 124 } else { kill 'KILL', -$pid; waitfor(1e9); $code = 137 }
    }
    my ($ol, $el) = (-s $ro || 0, -s $re || 0);
    if ($ol + $el <= 1048576) {
      my ($ob, $eb) = (slurp($ro, $ol), slurp($re, $el));
      out("$id $code\n" . length($ob) . "\n" . length($eb) . "\n$ob$eb");
    } else {
      # Large outputs are streamed; a file cut short meanwhile is padded to the sizes sent.
      out("$id $code\n$ol\n$el\n");
      for ([$ro, $ol], [$re, $el]) {
        my ($fh, $left) = @$_;
        while ($left > 0) {
          my $n = $left > 65536 ? 65536 : $left;
          my $b = slurp($fh, $n);
          out($b . "\0" x ($n - length $b));
          $left -= $n;
        }
      }
    }
    close $ro;
    close $re;
    # Something it started outlives it (it could still write these files): the next command gets new ones.
    if (kill 0, -$pid) { unlink $o, $e, $i; $g = $id }
    $pid = 0;
  }
  # The command and its input may carry a secret.
  truncate $c, 0;
  truncate $i, 0 if $in ne '/dev/null';
}
cleanup();
`;

export const SESSION_SCRIPT = SESSION_PERL.split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .join('\n');

/**
 * The session user's uid in a command's shell text: the session shell exports it (no fork per
 * script), `id -u` where a command runs outside a session.
 */
export const SESSION_UID = '${INFRA_UID:-$(id -u)}';

/** The time (epoch seconds) a command started: the session sets it (no `date` per script), `date` outside one. */
export const SESSION_NOW = '${INFRA_NOW:-$(date +%s)}';

export type Become = false | 'sudo';

/** argv that starts the session locally (no login shell in between). */
export function sessionArgv(become: Become, withPassword: boolean): string[] {
  if (!become) return ['perl', '-e', SESSION_SCRIPT];
  return withPassword
    ? ['sudo', '-S', '-k', '-p', SUDO_PROMPT, 'perl', '-e', SESSION_SCRIPT]
    : ['sudo', '-n', 'perl', '-e', SESSION_SCRIPT];
}

/** The same as one command line for an ssh exec request (run by the user's login shell). */
export function sessionCommandLine(become: Become, withPassword: boolean): string {
  return 'exec ' + sessionArgv(become, withPassword).map(quote).join(' ');
}
