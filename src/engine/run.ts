/**
 * One run of the engine, from arguments to exit code: load and validate everything (no
 * network), connect, execute, report, record (plan file, audit trail). Used by apply, plan,
 * run and patch. The CLI only parses arguments into a RunRequest (and owns the signals).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { redactDeep } from '../secrets/secret.js';
import { selectHosts } from '../inventory/limit.js';
import { gatherFacts } from '../facts/index.js';
import { resolveInside } from '../render/template.js';
import type { PlanFile } from './types.js';
import { execute, type ExecutorDeps } from './executor.js';
import { preparePlaysOf } from './prepare.js';
import { loadRunInput, type InputRequest, type RunInput } from './input.js';
import { checkTasksOffline } from './validate.js';
import { RunSession, sessionPool, type KeepaliveOptions } from './session.js';
import type { TransportPool } from '../transport/index.js';
import type { Inventory } from '../inventory/types.js';
import type { RunControl } from './control.js';
import { newPlanKey } from './plan-drift.js';
import type { Shard } from './shard.js';
import { RunKeeper, pruneKept, retentionOf } from '../rollback/keeper.js';

export interface RunRequest extends InputRequest {
  check: boolean;
  diff: boolean;
  forks: number;
  json: boolean;
  acceptNew: boolean;
  verify: boolean;
  lockWaitMs: number;
  planOut?: string;
  planIn?: string;
  detailedExitcode: boolean;
  /** "infra apply -i lab ..." for the lock metadata and the audit trail. */
  commandLine: string;
  mode: 'apply' | 'run' | 'patch';
  tags?: string[];
  skipTags?: string[];
  keepalive?: KeepaliveOptions;
  /** --shard K/N: this runner's part of the hosts (shard.ts). */
  shard?: Shard;
  control: RunControl;
}

export async function runPlaybook(req: RunRequest): Promise<number> {
  let expectedPlan: PlanFile | undefined;
  if (req.planIn) {
    expectedPlan = await readPlan(req.planIn);
    Object.assign(req, planArgs(expectedPlan, req.cwd));
  }
  const { input, plays, retention, session } = await prepareRun(req, expectedPlan);
  const planKey = req.planOut ? newPlanKey() : undefined;
  const keep = req.check ? undefined : new RunKeeper(session.runId, { command: req.commandLine, inventory: input.inventory.env });
  return session.guard(async () => {
    session.start();
    const result = await execute(executorDeps(session, input), {
      runId: session.runId,
      plays,
      checkMode: req.check,
      verify: req.verify,
      forks: req.forks,
      tags: req.tags,
      skipTags: req.skipTags,
      lock: req.check ? undefined : { meta: session.lockMeta(), waitMs: req.lockWaitMs },
      recordPlan: planKey && { key: planKey },
      expectedPlan,
      control: req.control,
      keep,
    });
    if (keep) await pruneKept(keep, session.hosts, (h) => (cmd, o) => session.pool.get(h).run(cmd, o), retention);
    if (req.planOut && planKey) {
      // A plan of some hosts only would refuse the others as "not in the plan": none at all is clearer.
      if (req.control.stopping) process.stderr.write(`plan not written to ${req.planOut}: the run was interrupted\n`);
      else await writePlan(req.planOut, session.runId, planKey, req, input, result.plan);
    }
    const exitCode = session.exitCode({ anyFailed: result.anyFailed, changesPending: req.check && req.detailedExitcode && result.anyChanges });
    await session.end({ exitCode, aborted: result.aborted });
    return exitCode;
  });
}

/**
 * Loads the run's input and checks every task offline while its connections start: the
 * handshakes overlap that work. Input errors still stop the run before any command reaches a
 * host (the early connections are closed, having run nothing).
 */
async function prepareRun(req: RunRequest, expectedPlan?: PlanFile) {
  let pool: TransportPool | undefined;
  try {
    const input = await loadRunInput(req, (inventory, patterns) => {
      pool = sessionPool({ ...req, inventory });
      pool.warm(targetsOf(inventory, patterns, req));
    });
    const plays = preparePlaysOf(input, req.limit, req.shard);
    // Input errors (a missing template variable, a bad template path) before any command.
    await checkTasksOffline(input, plays);
    const hosts = [...new Set(plays.flatMap((p) => p.hosts))];
    // What an applying run replaces is kept on each host for `infra rollback`, within its retention.
    const retention = new Map(hosts.map((h) => [h, retentionOf(input.inventory, h)]));
    const session = new RunSession({
      ...req,
      inventory: input.inventory,
      inventoryName: expectedPlan?.args.inventoryName,
      hosts,
      mode: req.check ? 'check' : req.mode,
      pool,
    });
    return { input, plays, retention, session };
  } catch (e) {
    await pool?.closeAll();
    throw e;
  }
}

/**
 * The hosts worth connecting to early: those of the plays' patterns within --limit. None with
 * --shard (the shard is cut from whole rollouts, known only once the plays are prepared) or
 * --accept-new (a run refused for its input must not have recorded host keys); a pattern that
 * does not resolve here is left to the run to report.
 */
function targetsOf(inventory: Inventory, patterns: string[], req: Pick<RunRequest, 'limit' | 'shard' | 'acceptNew'>): Set<string> {
  const out = new Set<string>();
  if (req.shard || req.acceptNew) return out;
  const hostsOf = (pattern: string): string[] => {
    try {
      return selectHosts(inventory, pattern);
    } catch {
      return [];
    }
  };
  const limited = req.limit === undefined ? undefined : new Set(hostsOf(req.limit));
  for (const h of patterns.flatMap(hostsOf)) if (!limited || limited.has(h)) out.add(h);
  return out;
}

/** The executor's dependencies for a session over loaded input (apply, plan, run, rollback). */
export function executorDeps(session: RunSession, input: RunInput): ExecutorDeps {
  return {
    inventory: input.inventory,
    transports: session.pool,
    reporter: session.reporter,
    hosts: session.hosts,
    gatherFacts: (run) => gatherFacts((cmd) => run(cmd)),
    renderFile: (roleDir, src, data) => input.renderer.renderFile(roleDir, src, data),
    readRoleFile: (roleDir, src) => readFile(resolveInside(join(roleDir, 'files'), src)),
    hostsMatching: (pattern) => selectHosts(input.inventory, pattern),
  };
}

async function readPlan(path: string): Promise<PlanFile> {
  let plan: PlanFile;
  try {
    plan = JSON.parse(await readFile(path, 'utf8')) as PlanFile;
  } catch (e) {
    throw new UserError(`cannot read plan ${path}: ${(e as Error).message}`, {
      pos: { file: path },
      hint: 'make one with: infra plan -i ENV --out plan.json',
    });
  }
  if ((plan.version as number) === 1) {
    throw new UserError(`${path} was made by an older infra whose fingerprints cannot see a changed secret`, {
      pos: { file: path },
      hint: 'make a new plan with: infra plan -i ENV --out plan.json',
    });
  }
  if (plan.version !== 2 || !plan.hosts || !plan.args || !/^[0-9a-f]{64}$/.test(plan.fingerprintKey ?? '')) {
    throw new UserError(`${path} is not an infra plan file`, { pos: { file: path } });
  }
  return plan;
}

function planArgs(plan: PlanFile, cwd: string): Partial<RunRequest> {
  return {
    inventory: plan.args.inventory,
    playbook: plan.args.playbook,
    limit: plan.args.limit,
    shard: plan.args.shard,
    tags: plan.args.tags,
    extraVars: plan.args.extraVars,
    role: plan.args.role,
    cwd,
  };
}

async function writePlan(path: string, runId: string, key: Buffer, req: RunRequest, input: RunInput, hosts: PlanFile['hosts']): Promise<void> {
  const plan: PlanFile = {
    version: 2,
    createdAt: new Date().toISOString(),
    runId,
    fingerprintKey: key.toString('hex'),
    args: redactDeep({
      inventory: input.inventory.dir,
      inventoryName: input.inventory.env,
      playbook: req.playbook ? resolve(req.cwd, req.playbook) : '',
      limit: req.limit,
      shard: req.shard,
      tags: req.tags,
      extraVars: req.extraVars,
      role: req.role,
    }),
    // Already redacted by the recorder; masking again could cut into a key or fingerprint's hex.
    hosts,
  };
  try {
    await writeFile(path, JSON.stringify(plan, null, 2) + '\n', { mode: 0o600 });
  } catch (e) {
    throw new UserError(`cannot write the plan to ${path}: ${(e as Error).message}`, { hint: 'give --out a writable path' });
  }
}
