import { z } from 'zod';
const orig = z.ZodType.prototype.safeParse;
const times = new Map<string, number[]>();
z.ZodType.prototype.safeParse = function (this: any, d: any, p: any) {
  const t = performance.now(); const r = orig.call(this, d, p); const dt = performance.now() - t;
  const k = (this.constructor.name) + ' ' + (d && typeof d === 'object' ? Object.keys(d).slice(0,5).join(',') : '');
  const e = times.get(k) ?? [0, 0]; e[0] += dt; e[1]++; times.set(k, e); return r;
} as any;
const { main } = await import(process.cwd() + '/src/cli/main.ts');
await main(['node', 'infra', 'check', '-i', 'prod']);
[...times].sort((a, b) => b[1][0] - a[1][0]).slice(0, 25).forEach(([k, [t, n]]) => console.log(t.toFixed(1).padStart(7), String(n).padStart(5), k));
