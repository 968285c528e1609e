/**
 * `rollback.file`: puts one path back the way it was before a run — the kept copy, byte-exact,
 * with its owner and mode (put()), a kept symlink or directory tree (cp -a, transport/keep.ts),
 * or nothing when the run created it. A path that changed after that
 * run is a conflict: left alone (and said so) unless forced. Writes go through put()/remove(),
 * so a rollback keeps what it replaces too, and can itself be rolled back.
 */
import { z } from 'zod';
import { diffText } from '../modules/file-plan.js';
import { sha256 } from '../modules/file-state.js';
import { DIFF_FETCH_LIMIT } from '../modules/file-state.js';
import { defineModule, unchanged, type Change, type Diff, type HostContext } from '../modules/types.js';
import { copyBackScript, keptCopy, stateScript } from '../transport/keep.js';
import { describeState, isSensitive, sameState, type KeptPath, type PathState } from './manifest.js';

export interface RestoreParams {
  /** The run being rolled back. */
  run: string;
  /** The host's runs directory (/var/lib/infra/runs for a root session). */
  runsDir: string;
  kept: KeptPath;
  /** Restore even when the path changed after the run. */
  force: boolean;
  /** Handlers the run's tasks notify that the playbook no longer defines here (said, not run). */
  missingHandlers: string[];
  /** The writer's own activation (confirm.files' `activate`), run as a handler once restored; recorded so a rollback of this rollback runs it too. */
  activate?: string;
}

type RestoreData =
  | { remove: true }
  | { remove: false; copy: string; before: Extract<PathState, { kind: 'file' }> }
  /** A symlink or directory tree: copied back with cp -a once what is there now is removed (and kept). */
  | { remove: false; copy: string; before: { kind: 'link' | 'directory' | 'other' }; now: PathState };

const SENSITIVE = '(content hidden: sensitive)\n';

export async function currentState(host: HostContext, path: string): Promise<PathState> {
  const r = await host.run(stateScript([path]));
  if (r.code !== 0) throw new Error(`cannot read the state of ${path}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim()) as PathState;
}

export const restore = defineModule<RestoreParams, RestoreParams, RestoreData>({
  name: 'rollback.file',
  params: z.custom<RestoreParams>((v) => typeof v === 'object' && v !== null && 'kept' in v),
  describe: (p) => p.kept.path,
  async check(host, p) {
    const { path, before, after } = p.kept;
    const now = await currentState(host, path);
    if (sameState(now, before)) return unchanged(`${path} is as it was before run ${p.run}`);
    if (before !== null && before.kind === 'other') {
      const why = `${path} was ${describeState(before)} before run ${p.run}: not restored; its copy is ${p.runsDir}${keptCopy(p.run, path)}`;
      return unchanged(why, { skipped: true, warning: why });
    }
    if (!sameState(now, after) && !p.force) {
      const why = `conflict: ${path} changed after run ${p.run} (now ${describeState(now)}; the run left ${describeState(after)}): left alone (--force restores it)`;
      return unchanged(why, { skipped: true, warning: why });
    }
    const sensitive = isSensitive(p.kept) || (now?.kind === 'file' && (parseInt(now.mode, 8) & 0o004) === 0);
    const warning = p.missingHandlers.length ? `handlers not defined in the playbook, not run: ${p.missingHandlers.join(', ')}` : undefined;
    const nowText = async (): Promise<string | null> => {
      if (now === null) return null;
      if (sensitive) return SENSITIVE;
      if (now.kind !== 'file' || now.size > DIFF_FETCH_LIMIT) return `<${describeState(now)}>\n`;
      const b = await host.get(path);
      return b ? diffText(b) : null;
    };
    if (before === null) {
      const change: Change = { what: `remove (created by run ${p.run})`, from: describeState(now) };
      const diff: Diff = { kind: 'file', path, before: await nowText(), after: null, sensitive: sensitive || undefined };
      return { changes: [change], diff: [diff], warning, data: { remove: true } };
    }
    const copy = p.runsDir + keptCopy(p.run, path);
    if (before.kind !== 'file') {
      const change: Change = { what: `restore the ${before.kind} (from before run ${p.run})`, from: describeState(now), to: describeState(before) };
      return { changes: [change], warning, data: { remove: false, copy, before, now } };
    }
    let keptText = SENSITIVE;
    if (!sensitive) {
      const b = before.size > DIFF_FETCH_LIMIT ? null : await host.get(copy);
      keptText = b ? diffText(b) : `<${describeState(before)}>\n`;
    }
    const change: Change = { what: `restore (from before run ${p.run})`, from: describeState(now), to: describeState(before) };
    const diff: Diff = { kind: 'file', path, before: await nowText(), after: keptText, sensitive: sensitive || undefined };
    return { changes: [change], diff: [diff], warning, data: { remove: false, copy, before } };
  },
  async apply(host, p, c) {
    const d = c.data;
    if (d.remove) return host.remove(p.kept.path);
    if (d.before.kind !== 'file') {
      if ('now' in d && d.now !== null) await host.remove(p.kept.path);
      const r = await host.run(copyBackScript(d.copy, p.kept.path));
      if (r.code !== 0) throw new Error(`restoring the ${d.before.kind} ${p.kept.path} from ${d.copy} failed (exit ${r.code}): ${r.stderr.trim()}`);
      return;
    }
    const bytes = await host.get(d.copy);
    if (bytes === null) throw new Error(`the kept copy ${d.copy} is missing (pruned?): ${p.kept.path} left unchanged`);
    if (sha256(bytes) !== d.before.sha256) throw new Error(`the kept copy ${d.copy} does not match the manifest's sha256: ${p.kept.path} left unchanged`);
    await host.put(p.kept.path, bytes, {
      mode: d.before.mode.padStart(4, '0'),
      owner: String(d.before.uid),
      group: String(d.before.gid),
      validate: p.kept.validate,
      sensitive: isSensitive(p.kept),
    });
  },
});
