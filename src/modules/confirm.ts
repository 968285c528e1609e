/**
 * confirm.files: a change that could cut the controller off (a firewall ruleset, an sshd
 * config), made like a router's "commit confirmed". Before anything changes, the host keeps a
 * copy of the files and arms a rollback that fires by itself after `within` seconds (a
 * transient systemd timer; a detached `sleep` where there is no systemd). Then the files are
 * written, the change is activated (`activate`, e.g. a reload), and a NEW connection is opened
 * through the same route (bastion included). It works: the controller confirms and the
 * rollback is disarmed. It does not: the old session, still open, rolls back at once and the
 * task fails saying so. The controller or the session died: the timer rolls back.
 *
 * On the host: /var/lib/infra/confirm/<id>/ (root, 0700) holds the copies (0, 1, ... in the
 * order of `files`; none when the file did not exist), `armed` ("<epoch> <within>"),
 * `rollback.sh`, and `pid` for the sleep fallback. Its timer is infra-confirm-<id>.timer.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { z } from 'zod';
import { quote, raw, sh } from '../shell/quote.js';
import { HostUnreachable } from '../transport/types.js';
import { UserError, messageOf } from '../errors.js';
import { file } from './files.js';
import { validateSchema } from './file-plan.js';
import type { WriteData } from './whole-file.js';
import { commandFailed, tail } from './run-checked.js';
import { defineModule, hasChanges, nonEmpty, unchanged, type Change, type Check, type HostContext, type ProbeResult, type TaskOptions } from './types.js';

export const CONFIRM_DIR = '/var/lib/infra/confirm';

/** rollback.sh found its guard already claimed: confirmed, or rolled back by the other side. */
export const CLAIMED = 75;
/** The arm script refused: a rollback of an earlier, unconfirmed change is still pending. */
const PENDING = 76;
/** The arm script refused: the session is not root. */
const NOT_ROOT = 77;

/** Fresh connections tried after activating (a reloading sshd may refuse one for a moment). */
const PROBE_ATTEMPTS = 3;
const PROBE_PAUSE_MS = 1000;
/** A probe that failed after this long timed out: the route is cut, trying again only waits. */
const PROBE_TIMED_OUT_MS = 5000;
/** How long the check after a rollback may retry a refused connection. */
const AFTER_ROLLBACK_PROBE_MS = 10_000;

type FileInput = Omit<Parameters<typeof file>[0], keyof TaskOptions | 'validate'>;

const fileItem = file.module.params.refine((f) => f.validate === undefined, {
  message: 'give validate once, next to files: it runs on each file',
});

const confirmParams = z
  .object({
    /** The unit: files.file parameters (path + content, src or template; mode, owner, group, vars). */
    files: z.array(fileItem).min(1),
    /** Run on each file's temp copy before it replaces the old one (`nft -c -f %s`). */
    validate: validateSchema,
    /** Makes the new files live (`systemctl reload ssh`); run again after a rollback unless `rollback` is given. */
    activate: z.string().min(1),
    /** Run after the old files are back, instead of `activate`: when loading the old files does not undo the new ones. */
    rollback: z.string().min(1).optional(),
    /** Seconds until the host rolls back by itself unless the controller confirmed. */
    within: z.number().int().min(15).max(3600).default(60),
  })
  .strict()
  .refine((p) => new Set(p.files.map((f) => f.path)).size === p.files.length, { message: 'each path once in files' });
export type ConfirmParams = z.infer<typeof confirmParams>;
type ConfirmInput = Omit<z.input<typeof confirmParams>, 'files'> & { files: FileInput[] };

/** Where one guarded unit lives on the host, and what its rollback does. */
export interface Guard {
  /** infra-confirm-<id>: the transient timer (and service) that rolls back. */
  unit: string;
  /** <base>/<id>: copies, rollback.sh, armed, pid. */
  dir: string;
  base: string;
  paths: string[];
  within: number;
  /** The shell command run once the old files are back. */
  rollback: string;
  /** Arm a systemd timer where systemd runs (false: always the sleep fallback, for tests). */
  systemd: boolean;
}

/** The guard of a set of paths: named after the first, made unique by a hash of all. */
export function guardFor(
  p: { paths: string[]; within: number; rollback: string },
  o: { base?: string; systemd?: boolean } = {},
): Guard {
  const base = o.base ?? CONFIRM_DIR;
  const hash = createHash('sha256').update(p.paths.join('\0')).digest('hex').slice(0, 8);
  const slug = p.paths[0].replace(/^\/+/, '').replace(/\//g, '-').replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 60);
  const id = `${slug}-${hash}`;
  return { unit: `infra-confirm-${id}`, dir: posix.join(base, id), base, paths: p.paths, within: p.within, rollback: p.rollback, systemd: o.systemd ?? true };
}

// ---------------------------------------------------------------- scripts run on the host

const vars = (g: Guard): string => sh`d=${g.dir}; u=${g.unit}`;

/**
 * Whether the armed rollback can still fire: its timer waits or runs, or its sleeper runs (a
 * zombie does not count: the PID 1 of some containers never reaps).
 */
const ALIVE = [
  'alive() {',
  '  systemctl is-active --quiet "$u.timer" 2>/dev/null || systemctl is-active --quiet "$u.service" 2>/dev/null || {',
  '    [ -s "$d/pid" ] && case "$(sed \'s/.*) //\' "/proc/$(cat "$d/pid")/stat" 2>/dev/null)" in \'\'|Z*) false ;; esac',
  '  }',
  '}',
].join('\n');

/** Stops the timer, or the sleeper's process group (it leads its own session). */
const DISARM = 'systemctl stop "$u.timer" 2>/dev/null; if [ -s "$d/pid" ]; then kill -- "-$(cat "$d/pid")" 2>/dev/null; fi';

/** One line: `none`, `pending <armed epoch> <within>`, `rolled-back <epoch> <exit>` or `stale`. */
export function stateScript(g: Guard): string {
  return [
    vars(g),
    ALIVE,
    'if [ ! -d "$d" ]; then echo none',
    'elif [ -d "$d/claimed" ]; then if [ -f "$d/rolled-back" ]; then echo "rolled-back $(cat "$d/rolled-back")"; else echo none; fi',
    'elif alive; then echo "pending $(cat "$d/armed" 2>/dev/null)"',
    'else echo stale; fi',
  ].join('\n');
}

/** Temp name next to a restored file (same filesystem: the rename is atomic). */
const restoreTemp = (path: string): string => posix.join(posix.dirname(path), `.${posix.basename(path)}.infra-rollback`);

/**
 * rollback.sh: puts the copies back (or removes a file that did not exist), then runs the
 * rollback command. Exactly once: whoever creates `claimed` first (this script, or the
 * controller's confirmation) wins.
 */
export function rollbackScript(g: Guard): string {
  const restores = g.paths.map((p, i) => {
    const copy = `"$d/${i}"`;
    return sh`if [ -e ${raw(copy)} ] || [ -L ${raw(copy)} ]; then cp -a -- ${raw(copy)} ${restoreTemp(p)} && mv -Tf -- ${restoreTemp(p)} ${p}; else rm -f -- ${p}; fi || rc=1`;
  });
  return [
    '#!/bin/sh',
    `# infra commit-confirm: unless the controller confirms first, puts back ${g.paths.join(', ')}`,
    '# as they were before an unconfirmed change, then runs the rollback command.',
    vars(g),
    `mkdir "$d/claimed" 2>/dev/null || exit ${CLAIMED}`,
    'rc=0',
    ...restores,
    `( ${g.rollback}\n) >"$d/rollback.log" 2>&1 </dev/null || rc=$?`,
    'echo "$(date +%s) $rc" > "$d/rolled-back"',
    `logger -t infra-confirm ${quote(`rolled back ${g.paths.join(', ')}`)}" (exit $rc)" 2>/dev/null`,
    'exit $rc',
  ].join('\n');
}

/**
 * Copies the files, writes rollback.sh (its text on stdin) and arms it: a transient systemd
 * timer, or a detached sleep where systemd is not PID 1. Refuses while an earlier rollback
 * of the same files is still pending.
 */
export function armScript(g: Guard): string {
  const copies = g.paths.map((p, i) => sh`if [ -e ${p} ] || [ -L ${p} ]; then cp -a -- ${p} "$d/${raw(String(i))}" || exit 1; fi`);
  const description = `infra: roll back ${g.paths.join(', ')} unless confirmed`;
  return [
    `[ "$(id -u)" = 0 ] || exit ${NOT_ROOT}`,
    vars(g),
    ALIVE,
    `if [ -d "$d" ] && [ ! -d "$d/claimed" ] && alive; then cat "$d/armed"; exit ${PENDING}; fi`,
    'umask 077',
    sh`mkdir -p -- ${g.base} && chmod 0700 ${g.base} || exit 1`,
    // Left by a rollback that fired (kept for check() to report) or by a host that rebooted.
    'rm -rf -- "$d" && mkdir -- "$d" || exit 1',
    ...copies,
    'cat > "$d/rollback.sh" || exit 1',
    `echo "$(date +%s) ${g.within}" > "$d/armed" || exit 1`,
    `if ${g.systemd ? '[ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1' : 'false'}; then`,
    '  systemctl stop "$u.timer" "$u.service" 2>/dev/null; systemctl reset-failed "$u.service" 2>/dev/null',
    sh`  systemd-run --quiet --collect --unit="$u" --on-active=${`${g.within}s`} --timer-property=AccuracySec=100ms --description=${description} /bin/sh "$d/rollback.sh" || exit 1`,
    'else',
    // setsid: its own session, so neither the session's end nor an abort of our command kills it.
    sh`  setsid sh -c 'echo $$ > "$1/pid"; sleep "$2"; exec /bin/sh "$1/rollback.sh"' sh "$d" ${g.within} </dev/null >/dev/null 2>&1 &`,
    '  i=0; while [ ! -s "$d/pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done',
    '  [ -s "$d/pid" ] || exit 1',
    'fi',
  ].join('\n');
}

/** The controller confirms: claim, disarm, drop the copies. Exit CLAIMED when the rollback won. */
export function confirmScript(g: Guard): string {
  return [vars(g), `mkdir "$d/claimed" 2>/dev/null || exit ${CLAIMED}`, DISARM, 'rm -rf -- "$d"'].join('\n');
}

/** The controller rolls back now (its session still works), disarms, and says how it went. */
export function rollbackNowScript(g: Guard): string {
  return [
    vars(g),
    '/bin/sh "$d/rollback.sh"; rc=$?',
    `[ $rc = ${CLAIMED} ] && exit ${CLAIMED}`,
    DISARM,
    'cat "$d/rollback.log" >&2',
    'rm -rf -- "$d"',
    'exit $rc',
  ].join('\n');
}

// ---------------------------------------------------------------- the module

interface ConfirmData {
  /** Each file of the unit with its own check (only those with changes are written). */
  files: { params: ConfirmParams['files'][number]; check: Check<WriteData> }[];
}

const clock = (ms: number): string => new Date(ms).toTimeString().slice(0, 8);
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

function guardOf(p: ConfirmParams): Guard {
  return guardFor({ paths: p.files.map((f) => f.path), within: p.within, rollback: p.rollback ?? p.activate });
}

/** What a rollback puts back, for the task's error: the files this change touched. */
function restoredText(data: ConfirmData): string {
  const touched = data.files.flatMap((f) => (hasChanges(f.check) ? [{ params: f.params, check: f.check }] : []));
  const existed = (f: (typeof touched)[number]) => f.check.data.state.kind !== 'absent';
  const restored = touched.filter(existed).map((f) => f.params.path);
  const removed = touched.filter((f) => !existed(f)).map((f) => f.params.path);
  const parts = [
    ...(restored.length ? [`rolled back to the previous ${restored.join(' and ')}`] : []),
    ...(removed.length ? [`${restored.length ? '' : 'rolled back: '}removed the new ${removed.join(' and ')} (there was none before)`] : []),
  ];
  return parts.join('; ');
}

export const files = defineModule<ConfirmParams, ConfirmInput, ConfirmData>({
  name: 'confirm.files',
  params: confirmParams,
  describe: (p) => p.files.map((f) => f.path).join(', '),

  async check(host, p) {
    const g = guardOf(p);
    // Every file's check renders its content first: run them together so that offline
    // validation (no connection) still renders each template before the first remote call.
    const results = await Promise.allSettled([host.run(stateScript(g)), ...p.files.map((f) => file.module.check(host, { ...f, validate: p.validate }))]);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length) throw (failed.find((r) => r.reason instanceof UserError) ?? failed[0]).reason;
    const [state, ...checks] = results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [Awaited<ReturnType<HostContext['run']>>, ...Check<WriteData>[]];
    if (state.code !== 0) throw commandFailed(`read the commit-confirm state of ${g.dir}`, state);
    const [kind, ...rest] = state.stdout.trim().split(' ');
    if (kind === 'pending') {
      const [armed, within] = rest.map(Number);
      throw new Error(
        `a rollback of ${g.paths.join(', ')} armed at ${clock(armed * 1000)} is still pending on this host: that change was never confirmed ` +
          `(its controller died?). The host restores the old files by ${clock((armed + within) * 1000)} (timer ${g.unit}); run again after that`,
      );
    }
    const data: ConfirmData = { files: p.files.map((params, i) => ({ params, check: checks[i] })) };
    const changes: Change[] = checks.flatMap((c, i) => c.changes.map((ch) => ({ ...ch, what: `${p.files[i].path}: ${ch.what}` })));
    if (!nonEmpty(changes)) return unchanged(`${g.paths.join(', ')} up to date`);
    if (kind === 'rolled-back') {
      changes.unshift({ what: 'the last change was rolled back by the host', from: `at ${clock(Number(rest[0]) * 1000)}, never confirmed` });
    }
    changes.push({ what: 'activate, confirmed by a new connection', to: `${p.activate} (rolled back unless confirmed within ${p.within} s)` });
    return { changes, diff: checks.flatMap((c) => c.diff ?? []), data };
  },

  async apply(host, p, c) {
    const data = c.data;
    const g = guardOf(p);
    const armed = await arm(host, g);
    const fail = (cause: string, activated: boolean) => rollBack(host, g, data, { cause, activated, armed });
    try {
      for (const f of data.files) if (hasChanges(f.check)) await file.module.apply(host, { ...f.params, validate: p.validate }, f.check);
    } catch (e) {
      return fail(messageOf(e), false);
    }
    const activatedAt = Date.now();
    let r;
    try {
      r = await host.run(p.activate, { timeoutMs: (p.within * 1000) / 3 });
    } catch (e) {
      return fail(`\`${p.activate}\` did not answer (${messageOf(e)})`, true);
    }
    if (r.code !== 0) return fail(commandFailed(`\`${p.activate}\``, r).message, true);
    const probe = await probeUntil(host, activatedAt + (p.within * 1000) / 2);
    if (!probe.ok) {
      return fail(`new connection after \`${p.activate}\` failed (${probe.error}; ${probe.attempts} attempt(s) in ${seconds(Date.now() - activatedAt)})`, true);
    }
    const done = await host.run(confirmScript(g)).catch((e: unknown) => {
      if (!(e instanceof HostUnreachable)) throw e;
      throw new Error(
        `a new connection worked, but the session was lost before confirming: the host rolls back by itself at ${clock(armed + p.within * 1000)} ` +
          `(${restoredText(data)}); run again after that`,
      );
    });
    if (done.code === CLAIMED) {
      throw new Error(
        `a new connection worked, but the host had already rolled back by itself (${seconds(Date.now() - armed)} after arming, within ${p.within} s): ` +
          `${restoredText(data)}; raise within`,
      );
    }
    if (done.code !== 0) throw commandFailed(`confirm (disarm ${g.unit})`, done);
  },
});

/** Copies the files and arms the rollback; returns when it was armed. Nothing changed yet. */
async function arm(host: HostContext, g: Guard): Promise<number> {
  const r = await host.run(armScript(g), { stdin: rollbackScript(g) });
  if (r.code === NOT_ROOT) throw new Error('commit-confirm needs a root session (become: sudo): nothing was changed');
  if (r.code === PENDING) {
    const [armed, within] = r.stdout.trim().split(' ').map(Number);
    throw new Error(`a rollback armed at ${clock(armed * 1000)} is still pending on this host (it fires by ${clock((armed + within) * 1000)}): nothing was changed; run again after that`);
  }
  if (r.code !== 0) throw commandFailed(`arm the rollback of ${g.paths.join(', ')} (nothing was changed)`, r);
  return Date.now();
}

/** Fresh connections until one works, a few tries, and never past `deadline`. */
async function probeUntil(host: HostContext, deadline: number): Promise<ProbeResult & { attempts: number }> {
  for (let attempts = 1; ; attempts++) {
    const r = await host.probeConnection();
    if (r.ok) return { ...r, attempts };
    const timedOut = r.ms >= PROBE_TIMED_OUT_MS;
    if (timedOut || attempts >= PROBE_ATTEMPTS || Date.now() + PROBE_PAUSE_MS >= deadline) {
      return { ...r, attempts, error: timedOut ? `timeout after ${seconds(r.ms)}: ${r.error}` : r.error };
    }
    await sleep(PROBE_PAUSE_MS);
  }
}

/**
 * The change failed (`cause`): roll back through the session if it still works, else let the
 * host's timer do it and wait for it. Always throws the whole story.
 */
async function rollBack(host: HostContext, g: Guard, data: ConfirmData, o: { cause: string; activated: boolean; armed: number }): Promise<never> {
  const restored = restoredText(data);
  let r;
  try {
    r = await host.run(rollbackNowScript(g), { timeoutMs: (g.within * 1000) / 2 });
  } catch (e) {
    if (!(e instanceof HostUnreachable)) throw e;
    const firesAt = o.armed + g.within * 1000;
    await sleep(firesAt + 2000 - Date.now());
    const after = await probeUntil(host, Date.now() + AFTER_ROLLBACK_PROBE_MS);
    throw new Error(
      `${o.cause}; the session was lost too: the host's own timer ${after.ok ? 'rolled' : 'was to roll'} back at ${clock(firesAt)} (${restored}); ` +
        (after.ok ? 'a new connection works again' : `a new connection still fails (${after.error})`),
    );
  }
  if (r.code === CLAIMED) throw new Error(`${o.cause}; the host had already rolled back by itself (${restored})`);
  const how = r.code === 0 ? `${restored}; the session stayed up` : `${restored}, but the rollback command failed (exit ${r.code}): ${tail(r.stderr, 5)}`;
  if (!o.activated) throw new Error(`${o.cause}: ${how}`);
  // sshd re-executes on a reload: a connection at that moment is refused. A few tries, like the first check.
  const after = await probeUntil(host, Date.now() + AFTER_ROLLBACK_PROBE_MS);
  throw new Error(`${o.cause}: ${how}; a new connection ${after.ok ? 'works again' : `still fails (${after.error})`}`);
}
