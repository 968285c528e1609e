/**
 * app.release: one release of an application, deployed the Capistrano way and proven live.
 *
 *   <root>/releases/<version>/   the artifact unpacked, dependencies installed, owned by root
 *   <root>/current → releases/<version>   switched atomically (rename of a symlink)
 *
 * The artifact comes from the controller (a directory packed deterministically, or a .tar.gz
 * built by CI). A release is immutable: its sha256 is recorded in releases/<version>/.infra-release,
 * and the same version with other content is refused. Rollback = apply the previous version:
 * its directory is still there (the last `keep` releases are), so only the switch happens.
 *
 * A deploy, in order: upload + unpack + install (while the old release serves) → drain this
 * host on every load balancer (`drain`, through HAProxy's admin socket) → switch `current` →
 * `activate` (a graceful reload) → wait until `health.url` answers the new version → back in
 * rotation (waits until HAProxy sees it UP) → prune old releases. A failing health check
 * fails the task and leaves the host drained, on the new release, for inspection; the rest
 * of a `serial` rollout stops there.
 *
 * check() is one round trip (current, the release's marker, releases on disk, the health
 * answer): "current and answering its version" is unchanged; anything else is a change.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { sh } from '../shell/quote.js';
import { server as haproxyServer, DEFAULT_ADMIN_SOCKET, type ServerParams } from './haproxy.js';
import { commandFailed, runChecked, splitSections } from './run-checked.js';
import { packDirectory } from './tar.js';
import { pathSchema } from './whole-file.js';
import { defineModule, hasChanges, nonEmpty, unchanged, type Change, type Check, type HostContext } from './types.js';

const MARK = '@@infra-app@@';
export const MARKER = '.infra-release';
const HEALTH_POLL_MS = 1000;
const LONG = 30 * 60_000;

const releaseName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, 'a release name: letters, digits and . _ + - (e.g. "1.4.2")');

const releaseParams = z
  .object({
    /** Holds releases/ and the `current` symlink. Owned by root: the app cannot rewrite its code. */
    root: pathSchema,
    /** On the controller: a directory (packed without node_modules/.git) or a .tar.gz. */
    artifact: z.string().startsWith('/', 'an absolute path on the controller'),
    /** The release's name; default: "version" of the artifact directory's package.json. */
    version: releaseName.optional(),
    /** Runs the install command in the new release (its unprivileged account). */
    user: z.string().regex(/^[a-z_][a-z0-9_-]*$/, 'an account name'),
    /** Installs dependencies in the release directory, as `user` (e.g. "npm ci --omit=dev"). */
    install: z.string().min(1).optional(),
    /** Makes the service run `current`, gracefully; run as root after the switch. */
    activate: z.string().min(1),
    health: z
      .object({
        url: z.string().url(),
        /** A field of the JSON answer that must equal the version (the app says what it runs). */
        versionField: z.string().min(1).optional(),
        timeoutMs: z.number().int().positive().default(60_000),
      })
      .strict(),
    /** Releases kept on the host, the current one included (rollback without an upload). */
    keep: z.number().int().min(2).default(5),
    /** Out of rotation on these load balancers while switching: one HAProxy server, by name. */
    drain: z
      .object({
        hosts: z.array(z.string().min(1)).min(1),
        backend: z.string().min(1),
        server: z.string().min(1),
        socket: pathSchema.default(DEFAULT_ADMIN_SOCKET),
        timeoutMs: z.number().int().positive().default(120_000),
      })
      .strict()
      .optional(),
  })
  .strict();
export type ReleaseParams = z.infer<typeof releaseParams>;

export interface Artifact {
  version: string;
  /** gzip of the archive, as uploaded. */
  bytes: Buffer;
  /** sha256 of the archive: the release's identity. */
  sha256: string;
}

/** The artifact and its version, read on the controller. Input errors are UserErrors. */
export async function loadArtifact(p: Pick<ReleaseParams, 'artifact' | 'version'>): Promise<Artifact> {
  const st = await stat(p.artifact).catch(() => undefined);
  if (!st) throw new UserError(`app artifact ${p.artifact} does not exist on this machine`, { hint: 'give a directory of the application, or a .tar.gz of it' });
  if (st.isDirectory()) {
    const tar = await packDirectory(p.artifact);
    return { version: p.version ?? (await packageVersion(p.artifact)), bytes: gzipSync(tar, { level: 9 }), sha256: sha256(tar) };
  }
  if (!/\.(tar\.gz|tgz)$/.test(p.artifact)) throw new UserError(`app artifact ${p.artifact} is neither a directory nor a .tar.gz`);
  if (!p.version) throw new UserError(`app artifact ${p.artifact}: a .tar.gz needs an explicit version`, { hint: 'set the version (the release directory name) next to the artifact' });
  const bytes = await readFile(p.artifact);
  return { version: p.version, bytes, sha256: sha256(bytes) };
}

async function packageVersion(dir: string): Promise<string> {
  const file = join(dir, 'package.json');
  let version: unknown;
  try {
    version = (JSON.parse(await readFile(file, 'utf8')) as { version?: unknown }).version;
  } catch (e) {
    throw new UserError(`cannot read the version of ${dir}: ${(e as Error).message}`, { hint: 'give the version explicitly, or a package.json with "version"' });
  }
  const parsed = releaseName.safeParse(version);
  if (!parsed.success) throw new UserError(`${file}: "version" ${JSON.stringify(version)} is not a release name`, { hint: 'letters, digits and . _ + -' });
  return parsed.data;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** What is on the host, from one round trip. */
export interface ReleaseState {
  /** Target of `current` (as written: "releases/1.0.0"), or null. */
  current: string | null;
  /** The wanted release's recorded sha256, or null when it is not (completely) there. */
  marker: string | null;
  /** Completed releases, newest deploy first. */
  releases: string[];
  health: HealthAnswer;
}

export interface HealthAnswer {
  ok: boolean;
  /** For people: "200 version 1.0.0", "503", "connection refused". */
  summary: string;
}

export function stateScript(p: ReleaseParams, version: string): string {
  const dir = `${p.root}/releases/${version}`;
  return [
    `echo ${MARK}current`,
    sh`readlink -- ${`${p.root}/current`} 2>/dev/null`,
    `echo ${MARK}marker`,
    sh`cat -- ${`${dir}/${MARKER}`} 2>/dev/null`,
    `echo ${MARK}releases`,
    // Deploy time = the marker's mtime; a directory without one is an unfinished unpack.
    sh`for m in ${`${p.root}/releases`}/*/${MARKER}; do [ -f "$m" ] && stat -c '%Y %n' -- "$m"; done`,
    `echo ${MARK}health`,
    healthCommand(p.health.url),
    'exit 0',
  ].join('\n');
}

/** The answer's body, then a line with the HTTP code (000: no answer, curl's error in the output). */
const CODE = '@@http_code=';
const healthCommand = (url: string) => sh`curl -sS -m 5 -o - -w ${`\\n${CODE}%{http_code}\\n`} -- ${url} 2>&1`;

export function parseState(stdout: string, p: ReleaseParams, version: string): ReleaseState {
  const s = splitSections(stdout, MARK);
  const releases = (s.get('releases') ?? '')
    .split('\n')
    .map((l) => /^(\d+) .*\/releases\/([^/]+)\/\.infra-release$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]) || a[2].localeCompare(b[2]))
    .map((m) => m[2]);
  return {
    current: (s.get('current') ?? '').trim() || null,
    marker: (s.get('marker') ?? '').trim() || null,
    releases,
    health: parseHealth(s.get('health') ?? '', version, p.health.versionField),
  };
}

export function parseHealth(out: string, version: string, versionField?: string): HealthAnswer {
  const at = out.lastIndexOf(`\n${CODE}`);
  const code = at >= 0 ? Number(/^\d+/.exec(out.slice(at + CODE.length + 1))?.[0] ?? 0) : 0;
  if (code === 0) return { ok: false, summary: /curl: \(\d+\) ([^\n]*)/.exec(out)?.[1] ?? 'no answer' };
  if (code < 200 || code > 299) return { ok: false, summary: `HTTP ${code}` };
  if (!versionField) return { ok: true, summary: `HTTP ${code}` };
  let answered: unknown;
  try {
    answered = (JSON.parse(out.slice(0, at)) as Record<string, unknown>)[versionField];
  } catch {
    return { ok: false, summary: `HTTP ${code}, not JSON` };
  }
  return { ok: answered === version, summary: `HTTP ${code}, ${versionField} ${JSON.stringify(answered ?? null)}` };
}

const currentVersion = (target: string | null): string | null => (target ? target.replace(/\/+$/, '').split('/').pop() ?? null : null);

export interface ReleasePlan {
  version: string;
  upload: boolean;
  switch: boolean;
  activate: boolean;
  prune: string[];
  previous: string | null;
}

export interface ReleaseData {
  plan: ReleasePlan;
  artifact: Pick<Artifact, 'version' | 'sha256' | 'bytes'>;
}

/** The decision, pure. Throws when the host holds this version with other content. */
export function decideRelease(p: ReleaseParams, a: Pick<Artifact, 'version' | 'sha256' | 'bytes'>, s: ReleaseState): Check<ReleaseData> {
  const v = a.version;
  if (s.marker && s.marker !== a.sha256) {
    throw new Error(
      `${p.root}/releases/${v} holds other content (sha256 ${s.marker.slice(0, 12)}, the artifact is ${a.sha256.slice(0, 12)}): ` +
        `a release is immutable — give the new build a new version (or remove that directory on the host to deploy it again)`,
    );
  }
  const previous = currentVersion(s.current);
  const plan: ReleasePlan = {
    version: v,
    upload: !s.marker,
    switch: previous !== v,
    activate: false,
    prune: [],
    previous,
  };
  plan.activate = plan.upload || plan.switch || !s.health.ok;
  // Keep the newest `keep` releases, counting this one; never the one running now.
  plan.prune = s.releases.filter((r) => r !== v && r !== previous).slice(Math.max(0, p.keep - (previous && previous !== v ? 2 : 1)));

  const changes: Change[] = [];
  if (plan.upload) {
    changes.push({ what: `upload release ${v}`, to: `${Math.ceil(a.bytes.length / 1024)} kB, sha256 ${a.sha256.slice(0, 12)}` });
    if (p.install) changes.push({ what: `install dependencies: ${p.install}` });
  }
  if (plan.activate && p.drain) changes.push({ what: `drain ${p.drain.backend}/${p.drain.server} on ${p.drain.hosts.join(', ')}` });
  if (plan.switch) changes.push({ what: 'current', from: previous ?? 'none', to: v });
  if (plan.activate) {
    changes.push({ what: `activate: ${p.activate}`, from: plan.switch ? undefined : `health: ${s.health.summary}` });
    changes.push({ what: `wait until ${p.health.url} answers${p.health.versionField ? ` ${p.health.versionField} ${v}` : ''}` });
  }
  if (plan.activate && p.drain) changes.push({ what: `ready ${p.drain.backend}/${p.drain.server} on ${p.drain.hosts.join(', ')}` });
  if (plan.prune.length) changes.push({ what: 'remove old releases', from: plan.prune.join(', ') });
  if (!nonEmpty(changes)) return unchanged(`release ${v} is current; health: ${s.health.summary}`);
  return {
    changes,
    diff: plan.switch ? [{ kind: 'value', name: `${p.root}/current`, before: previous, after: v }] : undefined,
    data: { plan, artifact: a },
  };
}

export const release = defineModule<ReleaseParams, z.input<typeof releaseParams>, ReleaseData>({
  name: 'app.release',
  params: releaseParams,
  describe: (p) => `${p.root} ${p.version ?? p.artifact.split('/').pop()}`,
  async check(host, p) {
    const a = await loadArtifact(p);
    const r = await runChecked(host, stateScript(p, a.version), `read the releases in ${p.root}`);
    return decideRelease(p, a, parseState(r.stdout, p, a.version));
  },
  async apply(host, p, c) {
    const { plan, artifact } = c.data;
    if (plan.upload) await unpack(host, p, artifact);
    if (plan.activate) {
      if (p.drain) await rotate(host, p.drain, 'drain');
      if (plan.switch) await runChecked(host, switchCommand(p.root, plan.version), `switch ${p.root}/current to ${plan.version}`);
      const r = await host.run(p.activate, { timeoutMs: LONG });
      if (r.code !== 0) throw withRollbackHint(commandFailed(`activate release ${plan.version} (${p.activate})`, r), p, plan);
      await waitHealthy(host, p, plan);
      if (p.drain) await rotate(host, p.drain, 'ready');
    }
    if (plan.prune.length) {
      await runChecked(host, sh`rm -rf -- ${plan.prune.map((r) => `${p.root}/releases/${r}`)}`, `remove old releases ${plan.prune.join(', ')}`);
    }
  },
});

/** Upload, unpack into a hidden directory, install as the app's user, hand to root, then rename into place. */
async function unpack(host: HostContext, p: ReleaseParams, a: ReleaseData['artifact']): Promise<void> {
  const releases = `${p.root}/releases`;
  const tarball = `${releases}/.${a.version}.tar.gz`;
  const partial = `${releases}/.${a.version}.partial`;
  const dir = `${releases}/${a.version}`;
  await runChecked(host, sh`mkdir -p -- ${releases}`, `create ${releases}`);
  await host.put(tarball, a.bytes, { mode: '0600', owner: 'root', group: 'root' });
  const install = p.install
    ? sh`home=$(getent passwd ${p.user} | cut -d: -f6) && (cd -- ${partial} && runuser -u ${p.user} -- env HOME="$home" sh -c ${p.install})`
    : 'true';
  const script = [
    'set -e',
    sh`rm -rf -- ${partial} ${dir}`,
    sh`mkdir -m 0755 -- ${partial}`,
    sh`tar -xzf ${tarball} -C ${partial} --no-same-owner`,
    sh`rm -f -- ${tarball}`,
    sh`chown -R ${p.user}: -- ${partial}`,
    install,
    // The running app must not be able to rewrite its own code.
    sh`chown -R root:root -- ${partial}`,
    sh`printf '%s\n' ${a.sha256} > ${`${partial}/${MARKER}`}`,
    sh`mv -T -- ${partial} ${dir}`,
  ].join('\n');
  const r = await host.run(script, { timeoutMs: LONG });
  if (r.code !== 0) {
    await host.run(sh`rm -rf -- ${partial} ${tarball}`);
    throw commandFailed(`unpack and install release ${a.version}`, r);
  }
}

/** A new symlink renamed over the old one: `current` is never missing, not even for a moment. */
export const switchCommand = (root: string, version: string): string =>
  sh`ln -sfn -- ${`releases/${version}`} ${`${root}/.current.infra`} && mv -T -- ${`${root}/.current.infra`} ${`${root}/current`}`;

async function waitHealthy(host: HostContext, p: ReleaseParams, plan: ReleasePlan): Promise<void> {
  const deadline = Date.now() + p.health.timeoutMs;
  for (;;) {
    const r = await host.run(healthCommand(p.health.url));
    const h = parseHealth(r.stdout, plan.version, p.health.versionField);
    if (h.ok) return;
    if (Date.now() + HEALTH_POLL_MS > deadline) {
      const err = new Error(`release ${plan.version} failed its health check: ${p.health.url} answered ${h.summary} after ${Math.round(p.health.timeoutMs / 1000)}s`);
      throw withRollbackHint(err, p, plan);
    }
    await new Promise((res) => setTimeout(res, HEALTH_POLL_MS));
  }
}

function withRollbackHint(err: Error, p: ReleaseParams, plan: ReleasePlan): Error {
  const drained = p.drain ? ` ${p.drain.server} is left drained on ${p.drain.hosts.join(', ')} (out of rotation) for inspection.` : '';
  const back = plan.previous && plan.previous !== plan.version ? ` Roll back: apply release ${plan.previous} again (kept in ${p.root}/releases/).` : '';
  err.message += `\n${drained}${back}`.trimEnd();
  return err;
}

/** This host's HAProxy server state on every load balancer, through haproxy.server (waits as it does). */
async function rotate(host: HostContext, d: NonNullable<ReleaseParams['drain']>, state: 'drain' | 'ready'): Promise<void> {
  if (!host.onHost) throw new Error('draining through the load balancers needs the engine (HostContext.onHost): run it with infra apply');
  const params: ServerParams = { backend: d.backend, server: d.server, state, wait: true, timeoutMs: d.timeoutMs, socket: d.socket };
  for (const lb of d.hosts) {
    const ctx = await host.onHost(lb);
    const c = await haproxyServer.module.check(ctx, params);
    if (hasChanges(c)) await haproxyServer.module.apply(ctx, params, c).catch((e: Error) => Promise.reject(new Error(`${lb}: ${e.message}`)));
  }
}
