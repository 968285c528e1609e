/**
 * Benchmark options, from argv first, then env (BENCH_HOSTS, BENCH_RUNS, BENCH_WORKLOADS):
 *   --hosts 1,10,30   --runs 3   --workloads w1,w2,w3   --quick (1 and 3 hosts, 1 run)
 *   --out FILE (default bench-results.json)   --tools infra,ansible (one tool only: for debugging)
 *   --scale 10,25,50,100: the scale run instead (infra only, W2 no-op; chart to --svg FILE)
 */
export type WorkloadId = 'w1' | 'w2' | 'w3';
export const ALL_WORKLOADS: WorkloadId[] = ['w1', 'w2', 'w3'];

export interface BenchOptions {
  hosts: number[];
  runs: number;
  workloads: WorkloadId[];
  out: string;
  quick: boolean;
  tools: ('infra' | 'ansible')[];
  /** Host counts of the scale run (infra only); empty: the comparison with Ansible. */
  scale: number[];
  /** Where the scale run's chart goes. */
  svg: string;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const flags = new Map<string, string>();
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--help' || a === '-h') throw new UsageError(USAGE);
    else if (a.startsWith('--')) {
      const [k, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`--${k} needs a value\n${USAGE}`);
      flags.set(k, v);
    } else throw new UsageError(`unexpected argument ${a}\n${USAGE}`);
  }
  for (const k of flags.keys()) {
    if (!['hosts', 'runs', 'workloads', 'out', 'tools', 'scale', 'svg'].includes(k)) throw new UsageError(`unknown option --${k}\n${USAGE}`);
  }
  const hostsText = flags.get('hosts') ?? env.BENCH_HOSTS ?? (quick ? '1,3' : '1,10,30');
  const runsText = flags.get('runs') ?? env.BENCH_RUNS ?? (quick ? '1' : '3');
  const wlText = flags.get('workloads') ?? env.BENCH_WORKLOADS ?? ALL_WORKLOADS.join(',');
  const hosts = hostsText.split(',').map((s) => positiveInt(s.trim(), 'hosts'));
  const runs = positiveInt(runsText, 'runs');
  const workloads = wlText.split(',').map((s) => {
    const w = s.trim().toLowerCase();
    if (!(ALL_WORKLOADS as string[]).includes(w)) throw new UsageError(`unknown workload ${s} (have: ${ALL_WORKLOADS.join(', ')})`);
    return w as WorkloadId;
  });
  const tools = (flags.get('tools') ?? env.BENCH_TOOLS ?? 'infra,ansible').split(',').map((s) => {
    const t = s.trim();
    if (t !== 'infra' && t !== 'ansible') throw new UsageError(`unknown tool ${s} (have: infra, ansible)`);
    return t;
  });
  const scale = (flags.get('scale') ?? '').split(',').filter((x) => x.trim()).map((x) => positiveInt(x.trim(), 'scale'));
  const svg = flags.get('svg') ?? 'bench-scale.svg';
  return { tools, hosts, runs, workloads, out: flags.get('out') ?? env.BENCH_OUT ?? 'bench-results.json', quick, scale, svg };
}

function positiveInt(s: string, what: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${what}: expected a positive integer, got ${JSON.stringify(s)}`);
  return n;
}

export class UsageError extends Error {}

export const USAGE = `usage: npm run bench -- [--quick] [--hosts 1,10,30] [--runs 3] [--workloads w1,w2,w3] [--out bench-results.json] [--tools infra,ansible]
       npm run bench -- --scale 10,25,50,100 [--runs 3] [--out bench-results.json] [--svg bench-scale.svg]
  env: BENCH_HOSTS, BENCH_RUNS, BENCH_WORKLOADS, BENCH_OUT, BENCH_TOOLS`;
