/**
 * What the benchmark does to the hosts outside the timed runs, as root via docker exec:
 * prepare (apt lists and the .deb files in the local cache, python3-apt for Ansible's apt
 * module), reset a workload's end state so the next tool does a real first apply, and check
 * the end state after a first apply: the same checks whichever tool ran.
 */
import { spawn } from 'node:child_process';
import type { Fleet } from '../integration/fleet.js';
import { docker } from '../../src/lab/docker.js';
import { W2, W3, blobContent, sha256, templateContent, w3Digest } from './expected.js';

const APT = 'DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Use-Pty=0';

/**
 * Package installs should measure the tools, not the mirror: one host runs apt-get update and
 * downloads the W2 packages (no recommends, like both tools are told), the others get a copy
 * of its lists and cache. python3-apt is Ansible's documented requirement on the target
 * (its apt module would install it on first use otherwise), so it is installed here.
 */
export async function prepareHosts(fleet: Fleet, log: (s: string) => void): Promise<void> {
  const [first, ...rest] = fleet.targets.map((t) => t.name);
  const seed = await fleet.exec(
    first!,
    `set -e; ${APT} update; mkdir -p /var/lib/apt/periodic; touch /var/lib/apt/periodic/update-success-stamp
     ${APT} install --no-install-recommends python3-apt >/dev/null
     ${APT} install -d --no-install-recommends ${W2.packages.join(' ')} >/dev/null`,
  );
  if (seed.code !== 0) throw new Error(`prepare ${first}: ${seed.stderr || seed.stdout}`);
  log(`prepared ${first} (apt lists, cached .debs, python3-apt); copying to ${rest.length} host(s)`);
  const tar = await captureTar(await containerId(first!));
  await inBatches(rest, 6, async (name) => {
    await feedTar(await containerId(name), tar);
    const r = await fleet.exec(name, `set -e; touch /var/lib/apt/periodic/update-success-stamp; ${APT} install --no-install-recommends python3-apt >/dev/null`);
    if (r.code !== 0) throw new Error(`prepare ${name}: ${r.stderr || r.stdout}`);
  });
}

const RESET: Record<'w2' | 'w3', string> = {
  w2: `systemctl disable --now ${W2.service} >/dev/null 2>&1 || true
${APT} purge ${W2.packages.join(' ')} cron-daemon-common >/dev/null 2>&1 || true
userdel -r ${W2.user} >/dev/null 2>&1 || true
groupdel ${W2.group} >/dev/null 2>&1 || true
rm -rf ${W2.dir} ${W2.sysctlFile}
sed -i '/^BENCH_MODE=/d' ${W2.lineFile}
systemctl daemon-reload`,
  w3: `rm -rf ${W3.dir}`,
};

/** Undoes a workload on every target, so that the next tool's first apply starts from scratch. */
export async function resetHosts(fleet: Fleet, workload: 'w2' | 'w3'): Promise<void> {
  await inBatches(fleet.targets.map((t) => t.name), 10, async (name) => {
    const r = await fleet.exec(name, RESET[workload]);
    if (r.code !== 0) throw new Error(`reset ${workload} on ${name}: ${r.stderr}`);
  });
  // The reset must really have reset: the end-state check must now fail everywhere.
  const still = await checkHosts(fleet, workload);
  const passing = still.filter((c) => c.problems.length === 0);
  if (passing.length > 0) throw new Error(`reset ${workload}: ${passing[0]!.host} still has the end state`);
}

const W2_PROBE = `
echo "pkg_tree=$(dpkg-query -W -f='\${Status}' tree 2>/dev/null)"
echo "pkg_cron=$(dpkg-query -W -f='\${Status}' cron 2>/dev/null)"
echo "group=$(getent group ${W2.group} | cut -d: -f1)"
echo "user=$(getent passwd ${W2.user} | cut -d: -f1,6,7)"
echo "user_group=$(id -gn ${W2.user} 2>/dev/null)"
echo "dir=$(stat -c '%U:%G:%a' ${W2.dir} 2>/dev/null)"
echo "template=$(sha256sum < ${W2.template} 2>/dev/null | cut -d' ' -f1) $(stat -c '%U:%G:%a' ${W2.template} 2>/dev/null)"
echo "blob=$(sha256sum < ${W2.blob} 2>/dev/null | cut -d' ' -f1) $(stat -c '%U:%G:%a' ${W2.blob} 2>/dev/null)"
echo "line=$(grep -cx '${W2.line}' ${W2.lineFile})"
echo "sysctl=$(sed -n 's/^[[:space:]]*${W2.sysctlKey.replace(/\./g, '\\.')}[[:space:]]*=[[:space:]]*//p' ${W2.sysctlFile} 2>/dev/null)"
echo "service=$(systemctl is-active ${W2.service}) $(systemctl is-enabled ${W2.service} 2>/dev/null)"
echo "marker=$(test -e ${W2.marker} && echo present)"
`;

const W3_PROBE = `echo "w3=$(ls ${W3.dir} 2>/dev/null | wc -l) $(cd ${W3.dir} 2>/dev/null && sha256sum f* | sha256sum | cut -d' ' -f1)"`;

function expectedW2(host: string): Record<string, string> {
  return {
    pkg_tree: 'install ok installed',
    pkg_cron: 'install ok installed',
    group: W2.group,
    user: `${W2.user}:/home/${W2.user}:/bin/bash`,
    user_group: W2.group,
    dir: `root:${W2.group}:755`,
    template: `${sha256(templateContent(host))} root:root:644`,
    blob: `${sha256(blobContent())} root:root:644`,
    line: '1',
    sysctl: W2.sysctlValue,
    service: 'active enabled',
    marker: 'present',
  };
}

export interface HostCheck {
  host: string;
  problems: string[];
}

/** Checks a workload's end state on every target; `problems` lists each mismatch. */
export async function checkHosts(fleet: Fleet, workload: 'w2' | 'w3'): Promise<HostCheck[]> {
  return inBatches(fleet.targets.map((t) => t.name), 10, async (host) => {
    const r = await fleet.exec(host, workload === 'w2' ? W2_PROBE : W3_PROBE);
    const got = new Map(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]));
    const want = workload === 'w2' ? expectedW2(host) : { w3: `${W3.count} ${w3Digest()}` };
    const problems = Object.entries(want)
      .filter(([k, v]) => got.get(k) !== v)
      .map(([k, v]) => `${k}: want ${JSON.stringify(v)}, got ${JSON.stringify(got.get(k) ?? null)}`);
    return { host, problems };
  });
}

/** The container of a fleet host: fleets label containers with our pid and the host name. */
async function containerId(host: string): Promise<string> {
  const id = (await docker(['ps', '-q', '--filter', `label=infra-test.pid=${process.pid}`, '--filter', `label=infra-test.host=${host}`])).trim();
  if (!id || id.includes('\n')) throw new Error(`bench: cannot find the container of ${host} (got ${JSON.stringify(id)})`);
  return id;
}

function captureTar(id: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn('docker', ['exec', id, 'tar', '-C', '/', '-czf', '-', 'var/lib/apt/lists', 'var/cache/apt/archives', 'var/lib/apt/periodic']);
    const chunks: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (b: Buffer) => chunks.push(b));
    p.stderr.on('data', (b: Buffer) => (err += b));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`tar in ${id}: ${err}`))));
  });
}

function feedTar(id: string, tar: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('docker', ['exec', '-i', id, 'tar', '-C', '/', '-xzf', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`untar in ${id}: ${err}`))));
    p.stdin.end(tar);
  });
}

export async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

/**
 * Runs `f` and counts the processes started meanwhile on the first target: the last pid its
 * pid namespace handed out (/proc/loadavg), before and after. One reading costs a few pids
 * itself (docker exec): measured by two readings in a row and taken off. Services on the host
 * (cron, timers) may add a few: it is a count for comparing the tools, not an exact one.
 */
export async function countHostProcesses<T>(fleet: Fleet, f: () => Promise<T>): Promise<[T, number]> {
  const host = fleet.targets[0]!.name;
  const lastPid = async (): Promise<number> => Number((await fleet.sh(host, 'cat /proc/loadavg')).trim().split(/\s+/)[4]);
  const a = await lastPid();
  const b = await lastPid();
  const r = await f();
  const c = await lastPid();
  return [r, c - b - (b - a)];
}
