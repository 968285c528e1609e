import type { FactSource } from './fact.js';

/** CPUs available to us (nproc honours cgroup/affinity limits). */
export const cpus: FactSource = {
  name: 'cpus',
  command: 'nproc 2>/dev/null || getconf _NPROCESSORS_ONLN',
  parse(stdout) {
    const n = Number.parseInt(stdout.trim(), 10);
    return Number.isFinite(n) && n > 0 ? { cpus: n } : {};
  },
};

/** Total memory in MiB, from MemTotal in /proc/meminfo (kB). */
export const memory: FactSource = {
  name: 'memory',
  // A `read` loop, not grep: no fork.
  command: 'while read -r k v u; do [ "$k" = MemTotal: ] && { echo "$k $v $u"; break; }; done </proc/meminfo',
  parse(stdout) {
    const m = /MemTotal:\s+(\d+)\s*kB/.exec(stdout);
    return m ? { memoryMb: Math.floor(Number(m[1]) / 1024) } : {};
  },
};
