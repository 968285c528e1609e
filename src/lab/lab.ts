/**
 * `infra lab up | down | status`: the inventory's hosts as systemd containers on one
 * docker network, with the login key installed for `admin` and known_hosts written, so
 * that `infra apply -i lab` works right after `lab up`.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { docker, dockerRun } from './docker.js';
import { generateKeyPair, writeKeyPair } from './keypair.js';
import type { LabOptions } from './options.js';
import { ensureDockerAnswers, ensureImage } from './preflight.js';
import {
  SETUP_SCRIPT,
  SSHD_READY_COMMAND,
  SYSTEMD_COMMAND,
  SYSTEMD_RUN_FLAGS,
  TUN_DEVICE_FLAGS,
  hostKeyFromPub,
  knownHostsLine,
} from './systemd-host.js';
import { readTopology, type LabHost } from './topology.js';

export interface LabHostStatus {
  name: string;
  /** How the inventory reaches it: "172.28.77.11", or "127.0.0.1:2222" for the bastion. */
  address: string;
  /** Container state: running, exited, ..., or missing. */
  state: string;
}

export async function labUp(o: LabOptions): Promise<LabHostStatus[]> {
  const topo = await readTopology(o.inventoryDir);
  await ensureDockerAnswers();
  await ensureImage(o.image, o.buildScript, o.log);
  const publicKey = await ensureKey(topo.keyPath, o.log);
  await ensureNetwork(o);

  const states = await containerStates(o);
  await Promise.all(
    topo.hosts.map(async (h) => {
      const state = states.get(h.name);
      if (state === 'running') return;
      if (state) {
        o.log(`lab: starting ${h.name} again (was ${state})`);
        await docker(['start', containerName(o, h)]);
      } else {
        o.log(`lab: creating ${h.name} at ${h.ip}`);
        await runContainer(o, h);
      }
    }),
  );

  const lines = await Promise.all(
    topo.hosts.map(async (h) => {
      await waitForSshd(containerName(o, h));
      const pub = await docker(['exec', containerName(o, h), 'sh', '-c', SETUP_SCRIPT, 'sh', publicKey, '']);
      return knownHostsLine(h.address, h.port, hostKeyFromPub(pub));
    }),
  );
  await writeFile(join(o.inventoryDir, 'known_hosts'), lines.join('\n') + '\n');
  o.log(`lab: ${topo.hosts.length} hosts up; wrote ${join(o.inventoryDir, 'known_hosts')}`);
  return labStatus(o);
}

/** Removes every container and the network that carry the lab's labels, and the stale known_hosts. */
export async function labDown(o: LabOptions): Promise<string[]> {
  await ensureDockerAnswers();
  const filters = labelFilters(o);
  const ids = (await docker(['ps', '-aq', ...filters])).split('\n').filter(Boolean);
  const names = ids.length ? (await docker(['inspect', '--format', '{{.Name}}', ...ids])).split('\n').filter(Boolean) : [];
  if (ids.length) await docker(['rm', '-f', '-v', ...ids]);
  const nets = (await docker(['network', 'ls', '-q', ...filters])).split('\n').filter(Boolean);
  await rm(join(o.inventoryDir, 'known_hosts'), { force: true });
  if (nets.length) await removeNetworks(nets);
  return names.map((n) => n.replace(/^\//, ''));
}

/**
 * Docker may take a moment to release the endpoints of containers just removed; Docker 20.10
 * sometimes keeps one for good (a daemon bug: only a dockerd restart clears it).
 */
async function removeNetworks(nets: string[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const r = await dockerRun(['network', 'rm', ...nets]);
    if (r.code === 0) return;
    if (!/active endpoints/.test(r.stderr) || attempt === 5) {
      throw new UserError(`the lab's containers are removed, its network is not: ${r.stderr.trim()}`, {
        hint: /active endpoints/.test(r.stderr)
          ? 'docker kept an endpoint of a removed container: restart dockerd, then run `infra lab down` again'
          : 'see docker\'s message; `docker network ls --filter label=infra-lab` shows it',
      });
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
}

export async function labStatus(o: LabOptions): Promise<LabHostStatus[]> {
  const topo = await readTopology(o.inventoryDir);
  await ensureDockerAnswers();
  const states = await containerStates(o);
  return topo.hosts.map((h) => ({
    name: h.name,
    address: h.port === 22 ? h.address : `${h.address}:${h.port}`,
    state: states.get(h.name) ?? 'missing',
  }));
}

/** Inventory host name → container state, for this lab's containers. */
async function containerStates(o: LabOptions): Promise<Map<string, string>> {
  const out = await docker(['ps', '-a', ...labelFilters(o), '--format', '{{.Names}}\t{{.State}}']);
  const states = new Map<string, string>();
  for (const line of out.split('\n').filter(Boolean)) {
    const [name, state] = line.split('\t');
    if (name.startsWith(o.namePrefix)) states.set(name.slice(o.namePrefix.length), state);
  }
  return states;
}

function labelFilters(o: LabOptions): string[] {
  return Object.entries(o.labels).flatMap(([k, v]) => ['--filter', `label=${k}=${v}`]);
}

function labelFlags(o: LabOptions): string[] {
  return Object.entries(o.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
}

function containerName(o: LabOptions, h: LabHost): string {
  return o.namePrefix + h.name;
}

async function ensureKey(keyPath: string, log: (line: string) => void): Promise<string> {
  if (existsSync(keyPath) && existsSync(`${keyPath}.pub`)) return (await readFile(`${keyPath}.pub`, 'utf8')).trim();
  await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
  const pair = generateKeyPair('infra-lab');
  await writeKeyPair(keyPath, pair);
  log(`lab: created login key ${keyPath}`);
  return pair.publicKey;
}

async function ensureNetwork(o: LabOptions): Promise<void> {
  const r = await dockerRun(['network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Subnet}} {{end}}', o.network]);
  if (r.code === 0) {
    if (!r.stdout.split(/\s+/).includes(o.subnet)) {
      throw new UserError(`docker network ${o.network} exists with subnet ${r.stdout.trim()}, not ${o.subnet}`, {
        hint: `remove it (docker network rm ${o.network}) and run \`infra lab up\` again`,
      });
    }
    return;
  }
  const c = await dockerRun(['network', 'create', '--driver', 'bridge', '--subnet', o.subnet, ...labelFlags(o), o.network]);
  if (c.code !== 0) {
    throw new UserError(`cannot create docker network ${o.network} (${o.subnet}): ${c.stderr.trim()}`, {
      hint: /overlap/i.test(c.stderr)
        ? `another docker network uses these addresses: find it with \`docker network inspect $(docker network ls -q) --format '{{.Name}} {{range .IPAM.Config}}{{.Subnet}}{{end}}'\``
        : 'see docker\'s message above',
    });
  }
}

async function runContainer(o: LabOptions, h: LabHost): Promise<void> {
  const publish = h.publishedPort ? ['--publish', `127.0.0.1:${h.publishedPort}:22`] : [];
  // The published host is the bastion: it runs the operators' WireGuard (role vpn).
  const tun = h.publishedPort ? TUN_DEVICE_FLAGS : [];
  const r = await dockerRun([
    'run', '--detach',
    '--name', containerName(o, h),
    '--hostname', h.name,
    ...labelFlags(o),
    '--label', `infra-lab.host=${h.name}`,
    '--network', o.network,
    '--ip', h.ip,
    ...publish,
    ...tun,
    ...SYSTEMD_RUN_FLAGS,
    o.image,
    ...SYSTEMD_COMMAND,
  ]);
  if (r.code !== 0) {
    await dockerRun(['rm', '-f', containerName(o, h)]);
    const portBusy = /address already in use|port is already allocated/i.test(r.stderr);
    throw new UserError(`cannot start lab host ${h.name}: ${r.stderr.trim()}`, {
      hint: portBusy
        ? `port ${h.publishedPort} on 127.0.0.1 is taken: free it, or change the bastion's port in ${join(o.inventoryDir, 'hosts.yaml')}`
        : `is ${h.ip} inside the lab subnet ${o.subnet}?`,
    });
  }
}

async function waitForSshd(container: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await dockerRun(['exec', container, ...SSHD_READY_COMMAND])).code !== 0) {
    if (Date.now() > deadline) throw new Error(`lab: sshd on ${container} did not come up within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
