/**
 * apt.*: packages (present / absent / latest, with old → new versions in the diff), deb822
 * repositories with a Signed-By key, and the package lists' age.
 * Package checks share one read per host per run (host.cached, forgotten after any change):
 * the lists' age and every installed package. `apt-cache policy` runs only for the names whose
 * decision needs a candidate version (not installed, or state latest): none in a no-op run.
 */
import { z } from 'zod';
import { raw, sh } from '../shell/quote.js';
import { parseAptPolicy, parseDpkgQuery, splitPin } from './apt-parse.js';
import { parseProbe, probeCommand, sha256, type FileState } from './file-state.js';
import { applyFile, planFile, type DesiredFile, type FilePlan } from './file-plan.js';
import { readChecked, runChecked, splitSections } from './run-checked.js';
import { cachedRead, defineModule, nonEmpty, unchanged, type Change, type Check, type Diff, type HostContext } from './types.js';
import { SESSION_NOW } from '../transport/session-script.js';

const LISTS = '/var/lib/apt/lists';
/** apt's own "update succeeded" stamp (Ubuntu touches it after every update; we do too). */
const STAMP = '/var/lib/apt/periodic/update-success-stamp';
const LONG = 30 * 60_000;

export const APT_ENV = 'DEBIAN_FRONTEND=noninteractive';
/** Wait for another apt/dpkg (unattended-upgrades) instead of failing at once. */
export const APT_OPTS = '-y -q -o DPkg::Lock::Timeout=120';
export const UPDATE_COMMAND = `${APT_ENV} apt-get ${APT_OPTS} update && mkdir -p /var/lib/apt/periodic && touch ${STAMP}`;

/**
 * Prints "<number of Packages lists> <now>", then the mtimes of the stamp and the lists dir (the
 * newest counts). A glob counts the lists and the session gives the time: `stat` is the only
 * fork (every run reads it).
 */
const LISTS_AGE_COMMAND = `set -- ${LISTS}/*_Packages*; [ -e "$1" ] || set --; echo "$# ${SESSION_NOW}"; stat -c %Y ${STAMP} ${LISTS} 2>/dev/null`;

export interface ListsAge {
  /** Seconds since the last update; null when there are no lists at all. */
  ageSeconds: number | null;
}

export function parseListsAge(stdout: string): ListsAge {
  const [count, now, ...mtimes] = stdout.trim().split(/\s+/).map(Number);
  const newest = Math.max(...mtimes.filter(Number.isFinite));
  if (!count || !Number.isFinite(now) || !Number.isFinite(newest)) return { ageSeconds: null };
  return { ageSeconds: Math.max(0, now - newest) };
}

/** Why the lists need an update before installing, or undefined when they are fresh. */
export function staleReason(age: ListsAge, cacheValidTime: number): string | undefined {
  if (age.ageSeconds === null) return 'package lists are missing';
  if (age.ageSeconds > cacheValidTime) return `package lists are ${age.ageSeconds}s old (> ${cacheValidTime}s)`;
  return undefined;
}

const MARK = '@@infra-apt@@';

/** What the apt.* checks read of a host once per run: the lists' age, the installed packages. */
export interface PackageSnapshot {
  age: ListsAge;
  /** Installed ("ii") package → version. */
  installed: Map<string, string>;
}

const SNAPSHOT_COMMAND = [
  `echo ${MARK}age`,
  LISTS_AGE_COMMAND,
  `echo ${MARK}dpkg`,
  `dpkg-query -W -f='\${Package}\\t\${Version}\\t\${db:Status-Abbrev}\\n' 2>/dev/null`,
  'exit 0',
].join('\n');

export function parsePackageSnapshot(stdout: string): PackageSnapshot {
  const s = splitSections(stdout, MARK);
  return { age: parseListsAge(s.get('age') ?? ''), installed: parseDpkgQuery(s.get('dpkg') ?? '') };
}

export function packageSnapshot(host: HostContext): Promise<PackageSnapshot> {
  return cachedRead(host, 'apt.snapshot', async () => parsePackageSnapshot((await readChecked(host, SNAPSHOT_COMMAND, 'read installed packages')).stdout));
}

// ---------------------------------------------------------------- apt.update

const updateParams = z
  .object({
    /** Seconds the lists stay valid; 0 updates on every run. */
    cacheValidTime: z.number().int().nonnegative().default(3600),
  })
  .strict();
export type UpdateParams = z.infer<typeof updateParams>;

export const update = defineModule<UpdateParams, z.input<typeof updateParams>>({
  name: 'apt.update',
  params: updateParams,
  describe: (p) => `cache valid ${p.cacheValidTime}s`,
  async check(host, p) {
    const { age } = await packageSnapshot(host);
    const why = p.cacheValidTime === 0 ? 'cacheValidTime is 0' : staleReason(age, p.cacheValidTime);
    if (!why) return unchanged(`package lists are ${age.ageSeconds}s old (valid ${p.cacheValidTime}s)`);
    return { changes: [{ what: 'apt-get update', from: why }], always: p.cacheValidTime === 0 };
  },
  async apply(host) {
    await runChecked(host, UPDATE_COMMAND, 'apt-get update', { timeoutMs: LONG });
  },
});

// ---------------------------------------------------------------- apt.packages

const packagesParams = z
  .object({
    /** Package names; "name=version" pins a version. */
    names: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (Array.isArray(v) ? v : [v])),
    state: z.enum(['present', 'absent', 'latest']).default('present'),
    /** Run apt-get update before installing when the lists are older than this (seconds). */
    cacheValidTime: z.number().int().nonnegative().default(3600),
    /** Remove with purge (config files too). */
    purge: z.boolean().default(false),
  })
  .strict()
  .refine((p) => p.names.every((n) => /^[a-z0-9][a-z0-9+.:-]*(=[A-Za-z0-9.+:~-]+)?$/.test(n)), {
    message: 'package names are lowercase letters, digits and + . : - (optionally "=version")',
  });
export type PackagesParams = z.infer<typeof packagesParams>;

interface PackagesData {
  install: string[];
  remove: string[];
  updateFirst?: string;
}

/** The decision, pure: what to install or remove given installed and candidate versions. */
export function decidePackages(
  p: PackagesParams,
  installed: Map<string, string>,
  candidates: Map<string, string | null>,
  stale: string | undefined,
): Check<PackagesData> {
  const changes: Change[] = [];
  const diff: Diff[] = [];
  const data: PackagesData = { install: [], remove: [] };
  const ok: string[] = [];
  for (const spec of p.names) {
    const { name, version: pinned } = splitPin(spec);
    const have = installed.get(name) ?? null;
    if (p.state === 'absent') {
      if (have === null) ok.push(`${name} absent`);
      else {
        changes.push({ what: `remove ${name}`, from: have });
        diff.push({ kind: 'package', name, before: have, after: null });
        data.remove.push(name);
      }
      continue;
    }
    const candidate = candidates.get(name) ?? null;
    const want = pinned ?? (p.state === 'latest' || have === null ? candidate : have);
    if (have !== null && (want === have || (want === null && !pinned))) {
      ok.push(`${name} ${have}`);
      continue;
    }
    if (want === null && !stale) throw new Error(`package ${name} has no installation candidate (is its repository configured?)`);
    const to = want ?? 'candidate after apt-get update';
    changes.push({ what: `${have === null ? 'install' : 'upgrade'} ${name}`, from: have ?? undefined, to });
    diff.push({ kind: 'package', name, before: have, after: to });
    data.install.push(pinned ? `${name}=${pinned}` : name);
  }
  if (!nonEmpty(changes)) return unchanged(`${ok.join(', ')}`);
  if (data.install.length > 0 && stale) {
    changes.unshift({ what: 'apt-get update', from: stale });
    data.updateFirst = stale;
  }
  return { changes, diff, data };
}

/** The names decidePackages needs a candidate version for: not installed, or state latest (a pin is its own version). */
export function candidatesNeeded(p: PackagesParams, installed: Map<string, string>): string[] {
  if (p.state === 'absent') return [];
  return p.names.map(splitPin).filter((n) => !n.version && (p.state === 'latest' || !installed.has(n.name))).map((n) => n.name);
}

export const packages = defineModule<PackagesParams, z.input<typeof packagesParams>, PackagesData>({
  name: 'apt.packages',
  batchReads: () => true,
  params: packagesParams,
  describe: (p) => p.names.join(', '),
  async check(host, p) {
    const { age, installed } = await packageSnapshot(host);
    const need = candidatesNeeded(p, installed);
    const candidates = need.length
      ? parseAptPolicy((await readChecked(host, sh`apt-cache policy ${need} 2>/dev/null; exit 0`, 'read candidate versions')).stdout)
      : new Map<string, string | null>();
    return decidePackages(p, installed, candidates, staleReason(age, p.cacheValidTime));
  },
  async apply(host, p, c) {
    const d = c.data;
    const cmds: string[] = [];
    if (d.updateFirst) cmds.push(UPDATE_COMMAND);
    if (d.install.length) {
      cmds.push(sh`${raw(APT_ENV)} apt-get ${raw(APT_OPTS)} --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install ${d.install}`);
    }
    if (d.remove.length) cmds.push(sh`${raw(APT_ENV)} apt-get ${raw(APT_OPTS)} ${raw(p.purge ? 'purge' : 'remove')} ${d.remove}`);
    await runChecked(host, cmds.join(' && '), `apt-get ${d.install.length ? 'install' : 'remove'} ${[...d.install, ...d.remove].join(' ')}`, {
      timeoutMs: LONG,
    });
  },
});

// ---------------------------------------------------------------- apt.repository

const repositoryParams = z
  .object({
    /** File names: /etc/apt/sources.list.d/<name>.sources and /etc/apt/keyrings/<name>.asc. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, _ . - only'),
    uris: z.union([z.string().url(), z.array(z.string().url()).min(1)]).transform((v) => (Array.isArray(v) ? v : [v])),
    suites: z.union([z.string(), z.array(z.string()).min(1)]).transform((v) => (Array.isArray(v) ? v : [v])),
    components: z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v])).default(['main']),
    types: z.array(z.enum(['deb', 'deb-src'])).default(['deb']),
    architectures: z.array(z.string()).optional(),
    /** The ASCII-armored public key that signs the repository. */
    key: z.string().refine((k) => k.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----'), 'key must be an ASCII-armored PGP public key'),
    state: z.enum(['present', 'absent']).default('present'),
    /** Run apt-get update after a change (default true). */
    update: z.boolean().default(true),
  })
  .strict();
export type RepositoryParams = z.infer<typeof repositoryParams>;

export const repoPaths = (name: string) => ({
  sources: `/etc/apt/sources.list.d/${name}.sources`,
  key: `/etc/apt/keyrings/${name}.asc`,
});

export function renderSources(p: RepositoryParams): string {
  const lines = [
    `Types: ${p.types.join(' ')}`,
    `URIs: ${p.uris.join(' ')}`,
    `Suites: ${p.suites.join(' ')}`,
    ...(p.components.length ? [`Components: ${p.components.join(' ')}`] : []),
    ...(p.architectures?.length ? [`Architectures: ${p.architectures.join(' ')}`] : []),
    `Signed-By: ${repoPaths(p.name).key}`,
  ];
  return `# managed by infra\n${lines.join('\n')}\n`;
}

interface RepoData {
  files: { want: DesiredFile; state: FileState; plan: FilePlan }[];
  remove: string[];
}

export const repository = defineModule<RepositoryParams, z.input<typeof repositoryParams>, RepoData>({
  name: 'apt.repository',
  params: repositoryParams,
  describe: (p) => p.name,
  async check(host, p) {
    const paths = repoPaths(p.name);
    const wants: DesiredFile[] = [
      { path: paths.key, content: Buffer.from(p.key.trim() + '\n'), mode: '0644', owner: 'root', group: 'root' },
      { path: paths.sources, content: Buffer.from(renderSources(p)), mode: '0644', owner: 'root', group: 'root' },
    ];
    const script = wants
      .map((w) => `echo ${MARK}${w.path}\n${probeCommand(w.path, p.state === 'present' ? { unlessSha: sha256(w.content) } : 'never')}`)
      .join('\n');
    const r = await readChecked(host, script, `read ${p.name} repository files`);
    const s = splitSections(r.stdout, MARK);
    const states = wants.map((w) => parseProbe(s.get(w.path) ?? ''));
    if (p.state === 'absent') {
      const present = wants.filter((_, i) => states[i].kind !== 'absent').map((w) => w.path);
      const changes = present.map((f) => ({ what: 'remove', from: f }));
      if (!nonEmpty(changes)) return unchanged(`repository ${p.name} is not configured`);
      return { changes, data: { files: [], remove: present } };
    }
    const files = wants.map((want, i) => ({ want, state: states[i], plan: planFile(want, states[i]) }));
    const changes = files.flatMap((f) => f.plan.changes.map((ch) => ({ ...ch, what: `${f.want.path}: ${ch.what}` })));
    if (!nonEmpty(changes)) return unchanged(`repository ${p.name} is configured`);
    return { changes, diff: files.flatMap((f) => (f.plan.diff ? [f.plan.diff] : [])), data: { files, remove: [] } };
  },
  async apply(host, p, c) {
    const d = c.data;
    for (const f of d.remove) await host.remove(f);
    if (d.files.length) await runChecked(host, 'mkdir -p /etc/apt/keyrings /etc/apt/sources.list.d', 'create /etc/apt/keyrings');
    for (const f of d.files) await applyFile(host, f.want, f.state, f.plan);
    if (p.update) await runChecked(host, UPDATE_COMMAND, 'apt-get update', { timeoutMs: LONG });
  },
});
