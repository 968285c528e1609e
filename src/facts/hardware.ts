import type { FactSource } from './fact.js';

/**
 * CPUs available to us: the shell's affinity list from /proc/self/status (what nproc counts,
 * read with the `read` builtin: no fork), else nproc.
 */
export const cpus: FactSource = {
  name: 'cpus',
  command:
    'l=; while read -r k v; do [ "$k" = Cpus_allowed_list: ] && { l=$v; break; }; done </proc/self/status; ' +
    'if [ -n "$l" ]; then echo "list $l"; else nproc 2>/dev/null || getconf _NPROCESSORS_ONLN; fi',
  parse(stdout) {
    const text = stdout.trim();
    const n = text.startsWith('list ') ? countCpuList(text.slice(5)) : Number.parseInt(text, 10);
    return Number.isFinite(n) && n > 0 ? { cpus: n } : {};
  },
};

/** "0-3,6,8-9" → 7; NaN when it is not such a list. */
export function countCpuList(list: string): number {
  let n = 0;
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return NaN;
    n += m[2] === undefined ? 1 : Number(m[2]) - Number(m[1]) + 1;
  }
  return n;
}

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
