/**
 * `npm run bench`: infra against Ansible on the same fleet (issue 7). See README.md.
 *
 * Per host count: one fleet (bastion + N targets), prepared once; then per workload and run,
 * both tools in alternating order, each starting from the same reset state: W1 one command,
 * W2 the 10-task role (first apply, end state checked, no-op re-apply), W3 100 small files.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { startFleet, type Fleet } from '../integration/fleet.js';
import { ANSIBLE_DIR, ensureAnsible, runAnsibleAdhoc, runAnsiblePlaybook, writeAnsibleSetup, type AnsibleRun, type AnsibleSetup } from './ansible.js';
import { blobContent } from './expected.js';
import { checkHosts, countHostProcesses, prepareHosts, resetHosts } from './hosts.js';
import { WORKDIR, runInfraApply, runInfraExec, type InfraRun } from './infra.js';
import type { Measured } from './measure.js';
import { UsageError, parseOptions, type BenchOptions, type WorkloadId } from './options.js';
import { runScale, renderScale, writeScaleSvg } from './scale.js';
import { cells, median, renderTable, renderTargets, renderTimeSplit, rows, targets, type Phase, type Sample, type Tool } from './report.js';

const W1_COMMAND = 'uptime';
const started = Date.now();
const log = (s: string): void => {
  process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);
};

async function main(): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(e.message + '\n');
      return 2;
    }
    throw e;
  }
  if (opts.scale.length) return scaleMain(opts);
  const ansibleVersion = ensureAnsible(log);
  log(`${ansibleVersion}; hosts ${opts.hosts.join(',')}; ${opts.runs} run(s) per cell; workloads ${opts.workloads.join(',')}`);
  await writeRoleFiles();
  if (opts.tools.includes('infra')) buildInfra();

  const samples: Sample[] = [];
  for (const n of opts.hosts) await benchHostCount(n, opts, samples);

  const rs = rows(cells(samples));
  const ts = targets(rs, samples);
  const out = [
    '',
    `infra vs Ansible (${ansibleVersion}), median of ${opts.runs} run(s); ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GB`,
    '',
    renderTable(rs),
    '',
    'wall/cpu: median per cell; x = Ansible / infra. cpu = user+sys of the controller process tree (Ansible: incl. its',
    'ControlPersist ssh masters). rss = peak resident set of the largest single process (/usr/bin/time %M);',
    "pss tree = peak summed PSS of all of Ansible's processes (forks, ssh), sampled. cmds, sessions: per host (min-max),",
    "from infra's recap; sessions = channels - the 1 forwarded channel through the bastion.",
    'fail = runs with a problem (infra/ansible). Both tools gather facts: infra at connect, Ansible gather_subset=min.',
    'Ansible runs start cold (ControlPersist masters of the previous run are ended): infra keeps nothing between runs either.',
    '',
    "where infra's time goes (medians; per host from its recap; *outside hosts = wall - host total: node start,",
    'inventory and role loading, bastion connection, output):',
    renderTimeSplit(rs),
    '',
    'targets (issue 20):',
    renderTargets(ts),
    '',
  ].join('\n');
  process.stdout.write(out);

  const problems = samples.filter((s) => s.problems.length > 0);
  if (problems.length) {
    process.stdout.write(`\n${problems.length} run(s) had problems:\n`);
    for (const s of problems.slice(0, 20)) process.stdout.write(`  ${s.tool} ${s.phase} ${s.hosts}h run ${s.run}: ${s.problems.slice(0, 3).join('; ')}\n`);
  }
  const file = resolve(opts.out);
  await writeFile(
    file,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, memGB: Math.round(totalmem() / 2 ** 30), node: process.version },
        ansible: ansibleVersion,
        options: opts,
        rows: rs,
        targets: ts,
        samples,
      },
      null,
      2,
    ) + '\n',
  );
  log(`results written to ${file}`);
  return problems.length ? 1 : 0;
}

/** The scale run: infra alone, W2 no-op vs host count, table + chart. */
async function scaleMain(opts: BenchOptions): Promise<number> {
  await writeRoleFiles();
  buildInfra();
  const r = await runScale(opts.scale, opts.runs, log, (f) => (current = f));
  process.stdout.write(`\n${renderScale(r)}\n`);
  await writeScaleSvg(resolve(opts.svg), r);
  const file = resolve(opts.out);
  await writeFile(file, JSON.stringify({ date: new Date().toISOString(), machine: { cpus: cpus().length, memGB: Math.round(totalmem() / 2 ** 30), node: process.version }, options: opts, scale: r }, null, 2) + '\n');
  log(`results written to ${file}, chart to ${resolve(opts.svg)}`);
  return r.problems.length ? 1 : 0;
}

/** The 100 KB file both tools copy, generated deterministically into both trees. */
async function writeRoleFiles(): Promise<void> {
  const blob = blobContent();
  await mkdir(join(WORKDIR, 'roles/bench_w2/files'), { recursive: true });
  await mkdir(join(ANSIBLE_DIR, 'files'), { recursive: true });
  await writeFile(join(WORKDIR, 'roles/bench_w2/files/blob.bin'), blob);
  await writeFile(join(ANSIBLE_DIR, 'files/blob.bin'), blob);
}

/** infra as users run it: compiled (npm run build → dist/, which bin/infra starts from). */
function buildInfra(): void {
  const t0 = Date.now();
  execFileSync(process.execPath, [fileURLToPath(new URL('../../bin/build.mjs', import.meta.url))], { stdio: 'inherit' });
  log(`compiled build in dist/ (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
}

let current: Fleet | undefined;

async function benchHostCount(n: number, opts: BenchOptions, samples: Sample[]): Promise<void> {
  log(`starting a fleet: bastion + ${n} target(s)`);
  const t0 = Date.now();
  // Ansible opens one ProxyJump connection to the bastion per host, all at once: sshd's default
  // MaxStartups (10:30:100) drops some ("kex_exchange_identification: Connection closed").
  // Raised so that Ansible is not penalised for it; infra uses one bastion connection.
  const fleet = await startFleet({ targets: n, sshdConfig: 'MaxStartups 200:30:400' });
  current = fleet;
  // Short: ControlPath sockets must fit in 108 bytes.
  const ansibleDir = `/tmp/ib-${process.pid}-${n}`;
  try {
    log(`fleet up in ${((Date.now() - t0) / 1000).toFixed(1)}s; preparing hosts`);
    await prepareHosts(fleet, log);
    const setup = await writeAnsibleSetup(fleet, ansibleDir);
    // Warm-up, not measured: the OS file cache, Python's bytecode, and a connectivity check.
    if (opts.tools.includes('infra')) {
      const warm = await runInfraExec(fleet, 'true');
      const p = infraExecProblems(fleet, warm);
      if (p.length) throw new Error(`infra warm-up failed: ${p.slice(0, 3).join('; ')}\n${warm.m.stderr.slice(-2000)}`);
    }
    if (opts.tools.includes('ansible')) {
      const warm = await runAnsibleAdhoc(setup, 'true');
      const p = ansibleProblems(fleet, warm, false);
      if (p.length) throw new Error(`ansible warm-up failed: ${p.slice(0, 3).join('; ')}\n${warm.m.stdout.slice(-2000)}\n${warm.m.stderr.slice(-2000)}`);
    }

    for (const w of opts.workloads) {
      for (let run = 1; run <= opts.runs; run++) {
        // Alternate which tool goes first, so neither always meets a warmer machine.
        const order = (run % 2 === 1 ? (['infra', 'ansible'] as Tool[]) : (['ansible', 'infra'] as Tool[])).filter((t) => opts.tools.includes(t));
        for (const tool of order) {
          const got = await runWorkload(w, tool, fleet, setup, n, run);
          samples.push(...got);
          for (const s of got) {
            log(
              `${s.phase.padEnd(10)} ${String(n).padStart(2)}h ${tool.padEnd(7)} run ${run}: ${(s.wallMs / 1000).toFixed(2)}s wall, ` +
                `${s.cpuS.toFixed(2)}s cpu, ${(s.maxRssKb / 1024).toFixed(0)} MB` +
                (s.hostProcs !== undefined ? `, ${s.hostProcs} procs on ${fleet.targets[0]!.name}` : '') +
                (s.infra ? `, ${s.infra.commands.join('-')} cmds/host, ${s.infra.sessions.join('-')} sessions/host, connect ${s.infra.connectMs.toFixed(0)} ms` : '') +
                (s.problems.length ? `  PROBLEMS: ${s.problems.slice(0, 3).join('; ')}` : ''),
            );
          }
        }
      }
    }
  } finally {
    log(`removing the ${n}-target fleet`);
    await fleet.down();
    current = undefined;
    await rm(ansibleDir, { recursive: true, force: true });
  }
}

async function runWorkload(w: WorkloadId, tool: Tool, fleet: Fleet, setup: AnsibleSetup, hosts: number, run: number): Promise<Sample[]> {
  const base = { hosts, tool, run };
  if (w === 'w1') {
    if (tool === 'infra') {
      const [r, procs] = await countHostProcesses(fleet, () => runInfraExec(fleet, W1_COMMAND));
      return [{ ...sample({ ...base, phase: 'W1 command' }, r.m, 0, infraExecProblems(fleet, r), infraDetail(fleet, r)), hostProcs: procs }];
    }
    const [r, procs] = await countHostProcesses(fleet, () => runAnsibleAdhoc(setup, W1_COMMAND));
    return [{ ...sample({ ...base, phase: 'W1 command' }, r.m, 0, ansibleProblems(fleet, r, false)), hostProcs: procs }];
  }
  const playbook = `${w}.yaml`;
  const label = w.toUpperCase() as 'W2' | 'W3';
  await resetHosts(fleet, w);
  const out: Sample[] = [];
  for (const phase of [`${label} first`, `${label} no-op`] as Phase[]) {
    const noop = phase.endsWith('no-op');
    let s: Sample;
    if (tool === 'infra') {
      const [r, procs] = await countHostProcesses(fleet, () => runInfraApply(fleet, playbook));
      const changed = r.recap.reduce((a, h) => a + h.changed, 0);
      s = sample({ ...base, phase }, r.m, changed, infraApplyProblems(fleet, r, noop), infraDetail(fleet, r));
      s.hostProcs = procs;
    } else {
      const [r, procs] = await countHostProcesses(fleet, () => runAnsiblePlaybook(setup, playbook));
      const changed = [...r.hosts.values()].reduce((a, h) => a + h.changed, 0);
      s = sample({ ...base, phase }, r.m, changed, ansibleProblems(fleet, r, noop));
      s.hostProcs = procs;
    }
    if (!noop) {
      for (const c of await checkHosts(fleet, w)) if (c.problems.length) s.problems.push(`end state on ${c.host}: ${c.problems.join(', ')}`);
    }
    out.push(s);
  }
  return out;
}

function sample(base: Pick<Sample, 'phase' | 'hosts' | 'tool' | 'run'>, m: Measured, changed: number, problems: string[], infra?: Sample['infra']): Sample {
  if (m.code !== 0 && problems.length === 0) problems.push(`exit code ${m.code}`);
  if (problems.length > 0) {
    // The first error line says what happened (a crash ends with its stack); the last ones say where.
    const lines = m.stderr.trim().split('\n').filter((l) => l.trim() && !/^\s+at /.test(l));
    const first = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? '';
    problems.push(`stderr: ${first.slice(0, 300)}${lines.length > 1 ? ` ... ${lines.slice(-2).join(' | ').slice(0, 200)}` : ''}`);
  }
  return { ...base, wallMs: m.wallMs, cpuS: m.cpuS, maxRssKb: m.maxRssKb, treePssKb: m.treePssKb, detachedCpuS: m.detachedCpuS, changed, problems, infra };
}

function infraDetail(fleet: Fleet, r: InfraRun): Sample['infra'] {
  const names = new Set(fleet.targets.map((t) => t.name));
  const recap = r.recap.filter((h) => names.has(h.host) && h.counters);
  if (recap.length === 0) return undefined;
  const span = (f: (c: NonNullable<(typeof recap)[number]['counters']>) => number): [number, number] => {
    const xs = recap.map((h) => f(h.counters!));
    return [Math.min(...xs), Math.max(...xs)];
  };
  return {
    channels: span((c) => c.channels),
    sessions: span((c) => c.channels - 1),
    commands: span((c) => c.commands),
    connections: span((c) => c.connections),
    connectMs: median(recap.map((h) => h.counters!.connectMs)),
    hostMs: median(recap.map((h) => h.durationMs)),
    taskMs: median(recap.map((h) => r.taskMs.get(h.host) ?? 0)),
    // Summed per module over one host's tasks: total ms of that module divided by hosts.
    modules: Object.fromEntries([...r.perTask].map(([m, xs]) => [m, xs.reduce((a, b) => a + b, 0) / recap.length])),
  };
}

function infraApplyProblems(fleet: Fleet, r: InfraRun, noop: boolean): string[] {
  const problems: string[] = [];
  for (const t of fleet.targets) {
    const h = r.recap.find((x) => x.host === t.name);
    if (!h) problems.push(`${t.name}: not in the recap`);
    else if (h.unreachable || h.failed > 0) problems.push(`${t.name}: ${h.unreachable ? 'unreachable' : `${h.failed} failed`}${h.error ? ` (${h.error})` : ''}${r.failures.has(t.name) ? ` [${r.failures.get(t.name)}]` : ''}`);
    else if (noop && h.changed > 0) problems.push(`${t.name}: no-op re-apply changed ${h.changed}`);
  }
  return problems;
}

function infraExecProblems(fleet: Fleet, r: InfraRun): string[] {
  return fleet.targets.filter((t) => r.execCodes.get(t.name) !== 0).map((t) => `${t.name}: exit ${r.execCodes.get(t.name) ?? 'none'}`);
}

function ansibleProblems(fleet: Fleet, r: AnsibleRun, noop: boolean): string[] {
  const problems: string[] = [];
  for (const t of fleet.targets) {
    const h = r.hosts.get(t.name);
    if (!h) problems.push(`${t.name}: not in Ansible's output`);
    else if (h.unreachable || h.failed) problems.push(`${t.name}: ${h.unreachable ? 'unreachable' : 'failed'}`);
    else if (noop && h.changed > 0) problems.push(`${t.name}: no-op re-apply changed ${h.changed}`);
  }
  if (problems.length) problems.push(`ansible: ${r.m.stdout.split('\n').filter((l) => /FAILED|UNREACHABLE|fatal/.test(l)).slice(0, 2).join(' | ').slice(0, 400)}`);
  return problems;
}

// Never leave containers behind: Ctrl-C and kill end the fleet too.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: removing the fleet`);
    void (current?.down() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  async (e) => {
    log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    await current?.down().catch(() => undefined);
    process.exit(1);
  },
);
