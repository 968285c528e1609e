/** `serial` → batches of hosts (pure). serial: a number, "30%", or a list of them (last repeats). */
export function batchHosts(hosts: string[], serial?: (number | string)[]): string[][] {
  if (!serial || serial.length === 0 || hosts.length === 0) return hosts.length ? [hosts] : [];
  const out: string[][] = [];
  let i = 0;
  let step = 0;
  while (i < hosts.length) {
    const spec = serial[Math.min(step, serial.length - 1)];
    const size = Math.max(1, batchSize(spec, hosts.length));
    out.push(hosts.slice(i, i + size));
    i += size;
    step++;
  }
  return out;
}

function batchSize(spec: number | string, total: number): number {
  if (typeof spec === 'number') return Math.floor(spec);
  const m = /^(\d+(?:\.\d+)?)%$/.exec(spec.trim());
  if (m) return Math.floor((Number(m[1]) / 100) * total);
  return Math.floor(Number(spec));
}

/** Runs fn over items with at most `limit` in flight, preserving nothing but completion. */
export async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item);
    }
  });
  await Promise.all(workers);
}
