/**
 * `infra rollback RUN_ID`: puts back, on each host, the files that run replaced (removing the
 * ones it created), then runs the handlers those files' tasks notify, as an apply would. It is
 * a run itself — locked, audited, with its own id, keeping what it replaces — so it can be
 * rolled back too. Packages, services and users the run changed are listed, not reverted: a
 * downgrade needs the old version still in the archive, and may not read the data the new
 * version already wrote.
 */
import { UserError, messageOf } from '../errors.js';
import { selectHosts } from '../inventory/limit.js';
import type { Task } from '../modules/types.js';
import { run as command } from '../modules/command.js';
import { loadRunInput } from '../engine/input.js';
import { preparePlaysOf } from '../engine/prepare.js';
import { execute } from '../engine/executor.js';
import { executorDeps } from '../engine/run.js';
import { RunSession, type KeepaliveOptions } from '../engine/session.js';
import { forEachLimit } from '../engine/batches.js';
import type { RunControl } from '../engine/control.js';
import type { BoundTask, PreparedPlay } from '../engine/types.js';
import { HostUnreachable } from '../transport/types.js';
import { manifestScript, NOT_KEPT, RUN_ID } from '../transport/keep.js';
import { RunKeeper, pruneKept, retentionOf } from './keeper.js';
import { notFileTasks, parseManifest, writersOf, type Manifest } from './manifest.js';
import { restore, type RestoreParams } from './restore.js';

export interface RollbackRequest {
  cwd: string;
  inventory: string;
  runId: string;
  limit?: string;
  /** Where the handlers are defined (default playbooks/site.yaml). */
  playbook?: string;
  vaultPasswordFile?: string;
  check: boolean;
  force: boolean;
  diff: boolean;
  json: boolean;
  forks: number;
  acceptNew: boolean;
  lockWaitMs: number;
  commandLine: string;
  keepalive?: KeepaliveOptions;
  control: RunControl;
}

/** What one host keeps of the run. */
interface HostManifest {
  runsDir: string;
  manifest: Manifest;
}

export async function rollback(req: RollbackRequest): Promise<number> {
  if (!RUN_ID.test(req.runId)) {
    throw new UserError(`"${req.runId}" is not a run id`, { hint: 'run ids are 8 hex digits: see `infra history -i ENV`' });
  }
  const input = await loadRunInput({ cwd: req.cwd, inventory: req.inventory, playbook: req.playbook, extraVars: [], vaultPasswordFile: req.vaultPasswordFile });
  const original = preparePlaysOf(input, req.limit);
  const hosts = selectHosts(input.inventory, req.limit ?? 'all');
  const retention = new Map(hosts.map((h) => [h, retentionOf(input.inventory, h)]));
  const session = new RunSession({
    inventory: input.inventory,
    hosts,
    mode: req.check ? 'check' : 'rollback',
    json: req.json,
    diff: req.diff || req.check,
    acceptNew: req.acceptNew,
    commandLine: req.commandLine,
    limit: req.limit,
    keepalive: req.keepalive,
    control: req.control,
  });
  return session.guard(async () => {
    session.start();
    const { kept, unread } = await readManifests(session, hosts, req);
    if (kept.size === 0 && unread === 0) {
      throw new UserError(`no host of ${req.limit ?? 'the inventory'} keeps run ${req.runId}`, {
        hint: 'it changed nothing there, was a check, or was pruned (infra_keep_runs / infra_keep_days): see `infra history -i ENV`',
      });
    }
    const keep = req.check ? undefined : new RunKeeper(session.runId, { command: req.commandLine, inventory: input.inventory.env, rollbackOf: req.runId });
    const result = await execute(executorDeps(session, input), {
      runId: session.runId,
      plays: rollbackPlays(req, kept, original),
      checkMode: req.check,
      verify: true,
      forks: req.forks,
      lock: req.check ? undefined : { meta: session.lockMeta(), waitMs: req.lockWaitMs },
      control: req.control,
      keep,
    });
    if (keep) await pruneKept(keep, session.hosts, (h) => (cmd, o) => session.pool.get(h).run(cmd, o), retention);
    // A path left alone (a conflict, or a kind that cannot be restored) means the hosts are not
    // back as they were: say so, and exit 1, so that a script or an on-call engineer cannot take
    // a partial rollback for a whole one.
    const leftAlone = req.check ? 0 : session.hosts.recap({}).reduce((n, r) => n + r.skipped, 0);
    const exitCode = session.exitCode({ anyFailed: result.anyFailed || leftAlone > 0 });
    await session.end({ exitCode, aborted: result.aborted });
    if (leftAlone > 0 && !result.aborted) {
      process.stderr.write(
        `rollback incomplete: ${leftAlone} path(s) left alone (the warnings above say why); --force also restores files changed after run ${req.runId}\n`,
      );
    }
    return exitCode;
  });
}

/** Each host's manifest of the run; hosts that keep none are said so, unreachable ones counted. */
async function readManifests(session: RunSession, hosts: string[], req: RollbackRequest): Promise<{ kept: Map<string, HostManifest>; unread: number }> {
  const out = new Map<string, HostManifest>();
  let unread = 0;
  await forEachLimit(hosts, req.forks, async (host) => {
    const say = (reason: string) =>
      session.reporter.emit({ type: 'task.result', host, task: `rollback ${req.runId}`, module: 'rollback.file', status: 'skipped', changes: [], reason, ms: 0 });
    try {
      const t = session.pool.get(host);
      await t.connect();
      const r = await t.run(manifestScript(req.runId));
      const [runsDir, ...rest] = r.stdout.split('\n');
      if (r.code === NOT_KEPT) return say(`run ${req.runId} kept nothing on ${host}`);
      if (r.code !== 0) throw new Error(`cannot read the manifest of run ${req.runId}: ${r.stderr.trim()}`);
      const manifest = parseManifest(rest.join('\n'));
      out.set(host, { runsDir, manifest });
      for (const x of notFileTasks(manifest)) {
        say(`not reverted (${x.module}): ${x.label}: ${x.changes.map((c) => `${c.what}${c.from || c.to ? ` ${c.from ?? ''} → ${c.to ?? ''}` : ''}`).join('; ')}`);
      }
    } catch (e) {
      unread++;
      if (e instanceof HostUnreachable) session.hosts.get(host).lose(messageOf(e));
      else session.hosts.get(host).refuse(messageOf(e));
    }
  });
  return { kept: out, unread };
}

/**
 * One play per play of the run, named like it: each restore task notifies, by name, what the
 * tasks that wrote the file notified, resolved in that play of the playbook — as an apply
 * resolves them (a name two roles of a play define is the later role's handler).
 */
function rollbackPlays(req: RollbackRequest, kept: Map<string, HostManifest>, original: PreparedPlay[]): PreparedPlay[] {
  const groups = new Map<string, Map<string, BoundTask[]>>(); // play name → host → tasks
  for (const [host, { runsDir, manifest }] of kept) {
    for (const k of manifest.paths) {
      const writers = writersOf(manifest, k);
      const last = writers.at(-1);
      const play = last?.play ?? '';
      const mine = writers.filter((w) => (w.play ?? '') === play);
      const notify = [...new Set(mine.flatMap((w) => w.notify))];
      const activate = [...mine].reverse().find((w) => w.activate)?.activate;
      if (activate) notify.push(activationName(activate));
      const handlers = handlersOf(original, host, play, manifest);
      const params: RestoreParams = {
        run: req.runId,
        runsDir,
        kept: k,
        force: req.force,
        missingHandlers: notify.filter((n) => !handlers.has(n)),
        ...(activate ? { activate } : {}),
      };
      const task: Task = { module: restore.module, params, notify: notify.filter((n) => handlers.has(n)), tags: [], ignoreErrors: false };
      const byHost = groups.get(play) ?? new Map<string, BoundTask[]>();
      groups.set(play, byHost);
      byHost.set(host, [...(byHost.get(host) ?? []), { task, roleName: last?.role, vars: {} }]);
    }
  }
  return [...groups].map(([play, byHost], index) => {
    const hosts = [...byHost.keys()];
    return {
      index,
      // The run's play name: what this rollback records, so a rollback of it finds the same handlers.
      name: play || `rollback ${req.runId}`,
      hosts,
      batches: [hosts],
      anyErrorsFatal: false,
      byHost: new Map(hosts.map((h) => [h, { tasks: () => byHost.get(h)!, handlers: handlersOf(original, h, play, kept.get(h)!.manifest) }])),
    };
  });
}

/**
 * The handlers of the host's play of that name in the playbook (every play of the host when
 * none is named so any more), plus one per activation that play's tasks ran inline
 * (`systemctl reload ssh` of confirm.files): restored files are made live as the run made its own.
 */
function handlersOf(plays: PreparedPlay[], host: string, play: string, m: Manifest): Map<string, BoundTask> {
  const out = new Map<string, BoundTask>();
  const named = plays.filter((p) => p.name === play && p.byHost.has(host));
  for (const p of named.length ? named : plays) {
    for (const [name, bt] of p.byHost.get(host)?.handlers ?? []) if (!out.has(name)) out.set(name, bt);
  }
  for (const t of m.tasks) {
    if (t.activate && (t.play ?? '') === play) {
      out.set(activationName(t.activate), { task: command({ cmd: t.activate, name: activationName(t.activate) }), roleName: t.role, vars: {} });
    }
  }
  return out;
}

const activationName = (cmd: string): string => `activate: ${cmd}`;
