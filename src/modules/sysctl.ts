/**
 * sysctl.param: the value persisted in a sysctl.d file (one `name = value` line, other lines
 * kept, so several params can share a file) and the live kernel value (`sysctl -n`).
 */
import { z } from 'zod';
import { sh } from '../shell/quote.js';
import { parseProbe, probeCommand, type FileState } from './file-state.js';
import { applyFile, joinLines, planFile, splitLines, type DesiredFile, type FilePlan } from './file-plan.js';
import { pathSchema } from './whole-file.js';
import { runChecked, splitSections } from './run-checked.js';
import { defineModule, nonEmpty, unchanged, type Change, type Diff } from './types.js';

const MARK = '@@infra-sysctl@@';

const sysctlParams = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.\/-]*$/, 'a sysctl key such as net.ipv4.ip_forward'),
    value: z.union([z.string(), z.number()]).transform(String).refine((v) => !v.includes('\n'), 'one line'),
    file: pathSchema.default('/etc/sysctl.d/99-infra.conf'),
    /** Also set the running kernel's value (default true). */
    live: z.boolean().default(true),
  })
  .strict();
export type SysctlParams = z.infer<typeof sysctlParams>;

/** "32768\t60999" and "32768 60999" are the same value. */
export const normalizeValue = (v: string): string => v.trim().split(/\s+/).join(' ');
/** net/ipv4/ip_forward and net.ipv4.ip_forward are the same key. */
const normalizeKey = (k: string): string => k.trim().replace(/\//g, '.');

/** Sets `name = value` in the file's lines: replaces the last existing line for the key. */
export function setSysctlLine(lines: string[], name: string, value: string): string[] {
  const key = normalizeKey(name);
  const out = [...lines];
  let last = -1;
  lines.forEach((l, i) => {
    const m = /^\s*-?([^#;=\s][^=]*?)\s*=(.*)$/.exec(l);
    if (m && normalizeKey(m[1]) === key) last = i;
  });
  const line = `${name} = ${value}`;
  if (last >= 0) {
    if (normalizeValue(/=(.*)$/.exec(lines[last])![1]) !== normalizeValue(value) || lines[last].trim().startsWith('-')) out[last] = line;
  } else out.push(line);
  return out;
}

interface SysctlData {
  file?: { want: DesiredFile; state: FileState; plan: FilePlan };
  setLive: boolean;
}

export const param = defineModule<SysctlParams, z.input<typeof sysctlParams>, SysctlData>({
  name: 'sysctl.param',
  batchReads: () => true,
  params: sysctlParams,
  describe: (p) => `${p.name} = ${p.value}`,
  async check(host, p) {
    const script = [`echo ${MARK}live`, sh`sysctl -n -- ${p.name}`, `echo ${MARK}file`, probeCommand(p.file, 'always')].join('\n');
    const r = await host.run(script);
    if (r.dropped?.stdout) throw new Error(`read ${p.file}: the output is too large`);
    const s = splitSections(r.stdout, MARK);
    const liveText = s.get('live')?.trim() ?? '';
    if (!liveText && p.live) throw new Error(`sysctl ${p.name}: ${r.stderr.trim() || 'unknown key'}`);
    const state = parseProbe(s.get('file') ?? '');
    if (state.kind !== 'absent' && state.kind !== 'file') throw new Error(`${p.file} is a ${state.kind}`);
    const changes: Change[] = [];
    const diff: Diff[] = [];
    const data: SysctlData = { setLive: false };
    const content = joinLines(setSysctlLine(splitLines(state.content), p.name, p.value));
    const want: DesiredFile = { path: p.file, content, mode: '0644' };
    const plan = planFile(want, state);
    if (plan.changes.length) {
      changes.push(...plan.changes.map((c) => ({ ...c, what: `${p.file}: ${c.what}` })));
      if (plan.diff) diff.push(plan.diff);
      data.file = { want, state, plan };
    }
    if (p.live && normalizeValue(liveText) !== normalizeValue(p.value)) {
      changes.push({ what: 'live value', from: normalizeValue(liveText), to: p.value });
      diff.push({ kind: 'value', name: p.name, before: normalizeValue(liveText), after: p.value });
      data.setLive = true;
    }
    if (!nonEmpty(changes)) return unchanged(`${p.name} = ${p.value} (persisted and live)`);
    return { changes, diff, data };
  },
  async apply(host, p, c) {
    const d = c.data;
    if (d.file) await applyFile(host, d.file.want, d.file.state, d.file.plan);
    if (d.setLive) await runChecked(host, sh`sysctl -q -w ${`${p.name}=${p.value}`}`, `sysctl -w ${p.name}`);
  },
});
