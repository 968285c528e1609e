/**
 * One run of the engine, from arguments to exit code: load and validate everything (no
 * network), connect, execute, report, record (plan file, audit trail). Used by apply, plan,
 * run and patch. The CLI only parses arguments into a RunRequest.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { userInfo, hostname } from 'node:os';
import { UserError, EXIT } from '../errors.js';
import { redactDeep } from '../secrets/secret.js';
import type { PlanFile } from './types.js';
import { execute } from './executor.js';
import { preparePlaysOf } from './prepare.js';
import { loadRunInput, type InputRequest } from './input.js';
import { checkTasksOffline } from './validate.js';
import { openSession } from './session.js';

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
}

export async function runPlaybook(req: RunRequest): Promise<number> {
  let expectedPlan: PlanFile | undefined;
  if (req.planIn) {
    expectedPlan = await readPlan(req.planIn);
    Object.assign(req, planArgs(expectedPlan, req.cwd));
  }
  const input = await loadRunInput(req);
  const plays = preparePlaysOf(input, req.limit);
  await checkTasksOffline(input, plays);
  const runId = randomBytes(4).toString('hex');
  const allHosts = [...new Set(plays.flatMap((p) => p.hosts))];
  const session = openSession({ ...req, inventory: input.inventory, renderer: input.renderer, runId, hosts: allHosts });
  const started = Date.now();
  try {
    session.reporter.emit({
      type: 'run.start',
      runId,
      command: req.commandLine,
      mode: req.check ? 'check' : 'apply',
      inventory: input.inventory.env,
      hosts: allHosts,
      at: new Date(started).toISOString(),
    });
    const result = await execute(session.deps, {
      plays,
      checkMode: req.check,
      verify: req.verify,
      forks: req.forks,
      tags: req.tags,
      skipTags: req.skipTags,
      lock: req.check
        ? undefined
        : {
            meta: {
              user: userInfo().username,
              controller: hostname(),
              runId,
              command: req.commandLine,
              since: new Date().toISOString(),
            },
            waitMs: req.lockWaitMs,
          },
      recordPlan: !!req.planOut,
      expectedPlan,
      shouldStop: session.shouldStop,
    });
    if (req.planOut) await writePlan(req.planOut, runId, { ...req, inventory: input.inventory.dir }, result.plan);
    const exitCode = session.interrupted()
      ? EXIT.interrupted
      : result.anyFailed
        ? EXIT.hostFailed
        : req.check && req.detailedExitcode && result.anyChanges
          ? EXIT.changesPending
          : EXIT.ok;
    await session.record({ result, started, exitCode, mode: req.check ? 'check' : req.mode });
    session.reporter.emit({
      type: 'run.end',
      runId,
      recap: result.recap,
      durationMs: Date.now() - started,
      interrupted: session.interrupted(),
      exitCode,
    });
    return exitCode;
  } finally {
    await session.close();
  }
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
  if (plan.version !== 1 || !plan.hosts || !plan.args) {
    throw new UserError(`${path} is not an infra plan file`, { pos: { file: path } });
  }
  return plan;
}

function planArgs(plan: PlanFile, cwd: string): Partial<RunRequest> {
  return {
    inventory: plan.args.inventory,
    playbook: plan.args.playbook,
    limit: plan.args.limit,
    tags: plan.args.tags,
    extraVars: plan.args.extraVars,
    role: plan.args.role,
    cwd,
  };
}

async function writePlan(path: string, runId: string, req: RunRequest, hosts: PlanFile['hosts']): Promise<void> {
  const plan: PlanFile = {
    version: 1,
    createdAt: new Date().toISOString(),
    runId,
    args: {
      inventory: req.inventory,
      playbook: req.playbook ? resolve(req.cwd, req.playbook) : '',
      limit: req.limit,
      tags: req.tags,
      extraVars: req.extraVars,
      role: req.role,
    },
    hosts,
  };
  await writeFile(path, JSON.stringify(redactDeep(plan), null, 2) + '\n', { mode: 0o600 });
}

