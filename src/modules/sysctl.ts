/**
 * sysctl.param: the value persisted in a sysctl.d file (one `name = value` line, other lines
 * kept, so several params can share a file) and the live kernel value (`sysctl -n`; not read
 * for a persisted-only param). Not the shell's `read` on /proc/sys: a sysctl file answers only
 * a read from offset 0, and `read` takes one byte at a time.
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
    name: z
      .string()
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_.\/-]*$/, 'a sysctl key such as net.ipv4.ip_forward')
      // Root reads /proc/sys/<key>: no component may climb out of it, or be empty.
      .refine((k) => procSysPath(k).slice('/proc/sys/'.length).split('/').every((c) => c !== '' && c !== '.' && c !== '..'), 'a sysctl key such as net.ipv4.ip_forward'),
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

/**
 * The key's file (what `sysctl -n` reads), as sysctl(8) finds it: in dotted form dots are separators and a slash stands
 * for a dot inside a name (net.ipv4.conf.eth0/100.rp_filter); a key whose first separator is a
 * slash is already a path.
 */
export function procSysPath(name: string): string {
  const rel = /^[^./]*\//.test(name) ? name : name.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
  return `/proc/sys/${rel}`;
}

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
    // A persisted-only param does not read the kernel's value (a container's /proc/sys is read-only, or the key is not there yet).
    const readLive = p.live ? [`echo ${MARK}live`, sh`sysctl -n -- ${p.name}`] : [];
    const r = await host.run([...readLive, `echo ${MARK}file`, probeCommand(p.file, 'always')].join('\n'));
    if (r.dropped?.stdout) throw new Error(`read ${p.file}: the output is too large`);
    const s = splitSections(r.stdout, MARK);
    const liveText = s.get('live')?.trim() ?? '';
    if (!liveText && p.live) throw new Error(`sysctl ${p.name}: ${r.stderr.trim() || `no ${procSysPath(p.name)} (unknown key, or its module is not loaded)`}`);
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
