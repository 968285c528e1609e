/**
 * `infra patch`: the weekly patch run, from arguments to exit code.
 *
 *   1. input (no network): inventory, --limit, the patch policies, maintenance windows
 *   2. one RunSession (run lock, Ctrl-C, recap, audit record mode 'patch'): every selected
 *      host and every helper (load balancers, Sentinels) connected and locked; any that is
 *      not stops the run before anything changed
 *   3. scan: the pending updates of every host (apt's lists refreshed)
 *   4. plan: patch groups by order, hosts ordered live by their strategy, batches by serial;
 *      the bastion carrying the run last, never rebooted
 *   5. --check: report and exit 3 when something is pending; else roll out batch by batch,
 *      stopping at the first failure (that host left out of service, the rest untouched) or
 *      after the current batch on Ctrl-C
 *   6. the report (JSON + Markdown) and the audit record
 */
import { selectHosts } from '../inventory/limit.js';
import type { Inventory } from '../inventory/types.js';
import { gatherFacts } from '../facts/index.js';
import { UserError, EXIT, messageOf } from '../errors.js';
import { batchHosts, forEachLimit } from '../engine/batches.js';
import { loadInventoryFor } from '../engine/input.js';
import { RunSession } from '../engine/session.js';
import type { AdhocRequest } from '../engine/adhoc.js';
import type { RunControl } from '../engine/control.js';
import { connectHost } from '../engine/host-run.js';
import { HostViews } from '../engine/host-context.js';
import { privateAddress } from '../cluster/members.js';
import type { HostContext } from '../modules/types.js';
import { redact } from '../secrets/secret.js';
import { shardHosts, type Shard } from '../engine/shard.js';
import { selected, type Scan, type Selection } from './apt.js';
import { resolvePolicies, type HostPolicy, type PatchGroup } from './policy.js';
import { strategyFor, type Strategy } from './strategy.js';
import { scanHost, patchHost, type PatchEnv } from './host-patch.js';
import { defaultReportDir, writeReports, type GroupReport, type HostReport, type PatchReport } from './report.js';
import { describeOpening, isOpen, nextOpening } from './window.js';
import type { RebootMode } from './reboot.js';
import type { Remote } from './remote.js';

export interface PatchRequest extends AdhocRequest {
  diff: boolean;
  check: boolean;
  selection: Selection;
  reboot?: RebootMode;
  window?: string;
  forceWindow: boolean;
  reportDir?: string;
  lockWaitMs: number;
  /** --shard K/N: this runner's patch groups (a group is never split: its order and serial hold). */
  shard?: Shard;
  control: RunControl;
}

/** A shard's part of the resolved policies: whole patch groups, dealt by shard.ts. */
function inShard(inventory: Inventory, all: ReturnType<typeof resolvePolicies>, shard: Shard | undefined): ReturnType<typeof resolvePolicies> {
  if (!shard) return all;
  const mine = shardHosts(all.groups.map((g) => g.hosts), shard);
  return resolvePolicies(inventory, [...all.hosts.keys()].filter((h) => mine.has(h)));
}

interface Planned {
  group: PatchGroup;
  strategy: Strategy;
  batches: string[][];
}

export async function patchFleet(req: PatchRequest): Promise<number> {
  // Patching reads no secret: vault values stay locked when no password is given.
  const inventory = await loadInventoryFor({ ...req, vaultOptional: true });
  const limited = selectHosts(inventory, req.limit ?? 'all');
  const inWindow = req.window ? limited.filter((h) => windowName(inventory, h) === req.window) : limited;
  const { hosts: policies, groups } = inShard(inventory, resolvePolicies(inventory, inWindow), req.shard);
  if (req.window && inWindow.length === 0) {
    throw new UserError(`no selected host is patched in window "${req.window}"`, { hint: 'a host is in window NAME when its patch.window is NAME (group_vars); drop --window to patch every selected host' });
  }
  const now = new Date();
  const windows = windowStates(policies, now);
  if (!req.check && !req.forceWindow) refuseOutsideWindows(windows);

  const carriers = carryingTheRun(inventory, [...policies.keys()]);
  // The strategies name their helpers from the inventory alone (before any session exists).
  let session: RunSession | undefined;
  const remote = sessionRemote(() => session!, inventory, () => lock);
  const strategies = new Map(groups.map((g) => [g.name, strategyFor(g, remote)]));
  const helpers = helperHosts(groups, strategies, policies);
  const everyone = [...policies.keys(), ...helpers];
  session = new RunSession({ ...req, inventory, hosts: everyone, mode: req.check ? 'check' : 'patch', diff: req.diff });
  const lock = req.check ? undefined : { meta: session.lockMeta(), waitMs: req.lockWaitMs };

  const reports = new Map<string, HostReport>([...policies.values()].map((hp) => [hp.host, emptyReport(hp)]));
  const env: PatchEnv = {
    remote,
    reporter: session.reporter,
    control: req.control,
    hostRun: (h) => session.hosts.get(h),
    selection: req.selection,
    check: req.check,
    reboot: req.reboot,
    carriesRun: (h) => carriers.has(h),
  };
  let stopped: PatchReport['stopped'];
  let plan: Planned[] = [];
  let exitCode: number = EXIT.ok;
  return session.guard(async () => {
    session.start();
    // 2. connect and lock everything the run touches; 3. scan what it patches.
    await forEachLimit(everyone, req.forks, async (host) => {
      const h = session.hosts.get(host);
      await connectHost(h, { transports: session.pool, reporter: session.reporter, lock, gatherFacts: (run) => gatherFacts((cmd) => run(cmd)) });
    });
    const down = everyone.filter((h) => session.hosts.get(h).down);
    const scans = new Map<string, Scan>();
    if (down.length === 0) {
      await forEachLimit([...policies.keys()], req.forks, async (host) => {
        const s = await scanHost(env, reports.get(host)!);
        if (s) scans.set(host, s);
      });
    }
    const unusable = everyone.filter((h) => session.hosts.get(h).down);
    if (unusable.length > 0) {
      stopped = { host: unusable[0], reason: `before anything changed: ${unusable.map((h) => `${h}: ${session.hosts.get(h).error ?? 'failed'}`).join('; ')}` };
    } else {
      for (const [host, s] of scans) reports.get(host)!.outcome = selected(s.updates, req.selection).length ? 'pending' : 'up to date';
      // 4. the plan, read live (who holds the VIP, who is master).
      try {
        plan = await planRollout(groups, strategies, carriers, (h) => reports.get(h)!.outcome === 'pending');
      } catch (e) {
        if (!(e instanceof PlanError)) throw e;
        const reason = `before anything changed: the order of patch group ${e.group.name} cannot be read: ${e.message}`;
        for (const h of e.group.hosts) session.hosts.get(h).refuse(reason);
        stopped = { host: e.group.hosts[0], reason };
      }
      for (const p of plan) {
        session.reporter.emit({ type: 'play.start', play: `patch ${p.group.name}: ${p.strategy.describe}; ${p.group.serial} at a time`, hosts: p.batches.flat() });
      }
      if (!req.check && !stopped) stopped = await rollOut(env, plan, policies, scans, reports);
    }
    const anyFailed = [...session.hosts.recap(session.pool.counters())].some((r) => r.failed > 0 || r.unreachable) || stopped !== undefined;
    const pending = [...reports.values()].some((r) => r.outcome === 'pending');
    exitCode = session.exitCode({ anyFailed, changesPending: req.check && pending });
    const report = buildReport(req, session, inventory, exitCode, stopped, plan, windows, reports);
    const files = await writeReports(req.reportDir ?? defaultReportDir(), report).catch((e: Error) => {
      process.stderr.write(redact(`warning: patch report not written: ${e.message}\n`));
      return undefined;
    });
    await session.end({ exitCode, aborted: req.control.aborted, recordOn: req.check ? [] : undefined });
    if (files) process.stderr.write(`patch report: ${files.json}\n              ${files.markdown}\n`);
    return exitCode;
  });
}

/** Groups in order; in each, the hosts that need patching in the strategy's live order, in batches; the hosts carrying the run last. */
async function planRollout(groups: PatchGroup[], strategies: Map<string, Strategy>, carriers: Set<string>, needed: (h: string) => boolean): Promise<Planned[]> {
  const out: Planned[] = [];
  const last: Planned[] = [];
  for (const group of groups) {
    const strategy = strategies.get(group.name)!;
    const todo = group.hosts.filter(needed);
    const ordered = await strategy.order(todo.filter((h) => !carriers.has(h))).catch((e: Error) => {
      throw new PlanError(group, e.message);
    });
    if (ordered.length) out.push({ group, strategy, batches: batchHosts(ordered, [group.serial]) });
    const carried = todo.filter((h) => carriers.has(h));
    if (carried.length) last.push({ group, strategy, batches: carried.map((h) => [h]) });
  }
  return [...out, ...last];
}

/** A strategy could not read the live state its order depends on (the Sentinels disagree, a member does not answer). */
class PlanError extends Error {
  constructor(
    readonly group: PatchGroup,
    message: string,
  ) {
    super(message);
  }
}

/** Batch after batch; the first failure (or Ctrl-C) ends it. Returns where it stopped. */
async function rollOut(env: PatchEnv, plan: Planned[], policies: Map<string, HostPolicy>, scans: Map<string, Scan>, reports: Map<string, HostReport>): Promise<PatchReport['stopped']> {
  for (const { strategy, batches } of plan) {
    for (const batch of batches) {
      if (env.control.stopping) return undefined;
      try {
        await strategy.guard(batch);
      } catch (e) {
        const reason = `not taken out of service: ${messageOf(e)}`;
        for (const h of batch) {
          env.reporter.emit({ type: 'task.result', host: h, task: 'safe to take out', module: 'patch.guard', status: 'failed', changes: [], error: redact(reason), ms: 0 });
          env.hostRun(h).refuse(reason);
          reports.get(h)!.error = reason;
        }
        return { host: batch[0], reason };
      }
      const results = await Promise.all(batch.map((h) => patchHost(env, policies.get(h)!, strategy, scans.get(h)!, reports.get(h)!)));
      const failed = batch.find((_, i) => !results[i]);
      if (failed) return { host: failed, reason: reports.get(failed)!.error ?? 'failed' };
    }
  }
  return undefined;
}

function emptyReport(hp: HostPolicy): HostReport {
  return { host: hp.host, group: hp.group, outcome: 'untouched', pending: [], upgraded: [], reboot: { required: [], done: false, restarted: [] }, steps: [] };
}

function windowName(inv: Inventory, host: string): string | undefined {
  const p = inv.hosts.get(host)!.vars.patch as { window?: unknown } | undefined;
  return typeof p?.window === 'string' ? p.window : undefined;
}

interface WindowState {
  name: string;
  hosts: string[];
  open: boolean;
  /** When closed: when it opens next. */
  next?: string;
}

function windowStates(policies: Map<string, HostPolicy>, now: Date): WindowState[] {
  const byName = new Map<string, WindowState>();
  for (const hp of policies.values()) {
    if (!hp.window) continue;
    const key = `${hp.window.name}\0${hp.window.periods.map((p) => p.text).join('\0')}`;
    let s = byName.get(key);
    if (!s) {
      const open = hp.window.periods.some((p) => isOpen(p, now));
      const soonest = open ? undefined : hp.window.periods.map((p) => ({ p, at: nextOpening(p, now) })).sort((a, b) => a.at.getTime() - b.at.getTime())[0];
      s = { name: hp.window.name, hosts: [], open, next: soonest && describeOpening(soonest.at, soonest.p.timeZone, now) };
      byName.set(key, s);
    }
    s.hosts.push(hp.host);
  }
  return [...byName.values()];
}

function refuseOutsideWindows(states: WindowState[]): void {
  const closed = states.filter((s) => !s.open);
  if (closed.length === 0) return;
  const lines = closed.map((s) => `window "${s.name}" is closed for ${s.hosts.join(', ')}: it opens next ${s.next}`);
  throw new UserError(`outside the maintenance window: nothing was patched\n  ${lines.join('\n  ')}`, {
    hint: 'wait for the window, patch the hosts of an open one (--window NAME, -l PATTERN), or --force-window for an emergency (the audit trail keeps the command line)',
  });
}

/** Inventory hosts that other hosts of the run are reached through (their bastion). */
function carryingTheRun(inv: Inventory, hosts: string[]): Set<string> {
  const out = new Set<string>();
  for (const spec of inv.hosts.values()) if (spec.conn.bastion && inv.hosts.has(spec.conn.bastion)) out.add(spec.conn.bastion);
  return new Set(hosts.filter((h) => out.has(h)));
}

/** The hosts strategies act on outside the patched ones (load balancers, Sentinels); an input error when one is missing. */
function helperHosts(groups: PatchGroup[], strategies: Map<string, Strategy>, policies: Map<string, HostPolicy>): string[] {
  const out = new Set<string>();
  for (const g of groups) {
    try {
      for (const h of strategies.get(g.name)!.helpers()) if (!policies.has(h)) out.add(h);
    } catch (e) {
      throw e instanceof UserError ? e : new UserError(`patch group ${g.name} (strategy ${g.strategy}): ${messageOf(e)}`, { hint: 'README: infra patch, strategies' });
    }
  }
  return [...out];
}

type Lock = { meta: ReturnType<RunSession['lockMeta']>; waitMs: number } | undefined;

function sessionRemote(sessionOf: () => RunSession, inventory: Inventory, lockOf: () => Lock): Remote {
  const matching = (pattern: string): string[] => selectHosts(inventory, pattern);
  const views = new HostViews(inventory, matching, (h) => sessionOf().hosts.find(h)?.facts);
  const spec = (host: string) => inventory.hosts.get(host)!;
  const remote: Remote = {
    run: (host, cmd, o) => sessionOf().pool.get(host).run(cmd, o),
    facts: (host) => sessionOf().hosts.get(host).facts!,
    vars: (host) => spec(host).vars,
    hosts: matching,
    address: (host) => privateAddress({ address: spec(host).conn.address, vars: spec(host).vars }),
    async reconnect(host) {
      const session = sessionOf();
      const lock = lockOf();
      const t = await session.pool.reopen(host);
      await t.connect();
      if (lock) await t.lock(lock.meta, 0);
      session.hosts.get(host).transport = t;
    },
    announce(host, message) {
      sessionOf().reporter.emit({ type: 'task.result', host, task: 'announce', module: 'patch.announce', status: 'ok', changes: [], reason: message, warning: message, ms: 0 });
    },
    context(host): HostContext {
      const session = sessionOf();
      const t = () => session.pool.get(host);
      return {
        name: host,
        address: spec(host).conn.address,
        groups: spec(host).groups,
        vars: spec(host).vars,
        facts: session.hosts.get(host).facts!,
        checkMode: false,
        inventory,
        run: (cmd, o) => t().run(cmd, o),
        put: (path, bytes, o) => t().put(path, bytes, o),
        remove: (path) => t().remove(path),
        get: (path) => t().get(path),
        render: () => Promise.reject(new Error('the patch run renders no template')),
        roleFile: () => Promise.reject(new Error('the patch run reads no role file')),
        hosts: (pattern) => views.matching(pattern),
        peerRun: (name, cmd, o) => session.pool.get(name).run(cmd, o),
        probeConnection: async () => ({ ok: true, ms: 0 }),
      };
    },
  };
  return remote;
}

function buildReport(
  req: PatchRequest,
  session: RunSession,
  inventory: Inventory,
  exitCode: number,
  stopped: PatchReport['stopped'],
  plan: Planned[],
  windows: WindowState[],
  reports: Map<string, HostReport>,
): PatchReport {
  const windowOf = (host: string) => windows.find((w) => w.hosts.includes(host));
  const groups: GroupReport[] = plan.map((p) => {
    const w = windowOf(p.batches[0][0]);
    return {
      name: p.group.name,
      strategy: p.group.strategy,
      describe: p.strategy.describe,
      serial: p.group.serial,
      hosts: p.batches.flat(),
      ...(w ? { window: { name: w.name, open: w.open, next: w.next } } : {}),
    };
  });
  const order = plan.flatMap((p) => p.batches.flat());
  const hosts = [...reports.values()].sort((a, b) => rank(order, a.host) - rank(order, b.host));
  const pending = hosts.some((h) => h.outcome === 'pending');
  const result: PatchReport['result'] = stopped
    ? 'stopped'
    : req.control.stopping
      ? 'interrupted'
      : req.check
        ? pending
          ? 'pending'
          : 'nothing to patch'
        : hosts.some((h) => h.outcome === 'patched')
          ? 'patched'
          : 'nothing to patch';
  return {
    version: 1,
    runId: session.runId,
    inventory: inventory.env,
    command: redact(req.commandLine),
    mode: req.check ? 'check' : 'patch',
    selection: req.selection,
    started: new Date(session.started).toISOString(),
    ended: new Date().toISOString(),
    exitCode,
    result,
    ...(stopped ? { stopped } : {}),
    order,
    groups,
    hosts,
  };
}

const rank = (order: string[], h: string): number => (order.includes(h) ? order.indexOf(h) : order.length);
