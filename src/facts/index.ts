/**
 * Gathers every fact in ONE round trip: one script runs each source's command after a marker
 * line, and each section goes to its parser.
 */
import { splitSections } from '../shell/sections.js';
import { randomBytes } from 'node:crypto';
import type { RunResult } from '../transport/types.js';
import type { FactSource } from './fact.js';
import type { Facts } from './types.js';
import { host } from './host.js';
import { os } from './os.js';
import { kernel } from './kernel.js';
import { cpus, memory } from './hardware.js';
import { container } from './virt.js';
import { network } from './network.js';
import { init, uid } from './session.js';

export type { FactSource } from './fact.js';
export const factSources: FactSource[] = [host, os, kernel, cpus, memory, container, network, uid, init];

export const defaultFacts = (): Facts => ({
  hostname: '',
  fqdn: '',
  os: { id: 'unknown', versionId: '', codename: '', prettyName: '', family: 'debian' },
  kernel: '',
  arch: '',
  cpus: 1,
  memoryMb: 0,
  container: 'none',
  uid: -1,
  initSystem: 'other',
});

/**
 * The script: each command after its marker, stderr dropped. A group, not a subshell: the
 * commands are ours (no `exit`, no `cd`), and a fork per source would be 9 processes on every
 * host at every run.
 */
export function factScript(marker: string, sources: FactSource[] = factSources): string {
  return sources.map((s) => `echo '${marker}${s.name}'\n{ ${s.command}\n} 2>/dev/null`).join('\n') + '\nexit 0\n';
}

export function parseFactOutput(stdout: string, marker: string, sources: FactSource[] = factSources): Facts {
  const sections = splitSections(stdout, marker);
  const facts = defaultFacts();
  for (const s of sources) {
    const text = sections.get(s.name);
    if (text !== undefined) Object.assign(facts, s.parse(text));
  }
  return facts;
}

export async function gatherFacts(run: (cmd: string) => Promise<RunResult>): Promise<Facts> {
  // A marker no command output can contain by accident.
  const marker = `@@infra-fact-${randomBytes(6).toString('hex')}@@`;
  const r = await run(factScript(marker));
  if (r.code !== 0) throw new Error(`gathering facts failed (exit ${r.code}): ${r.stderr.trim().slice(-500)}`);
  return parseFactOutput(r.stdout, marker);
}
