/**
 * Fleet fixture: a bastion (sshd published on 127.0.0.1) and N targets reachable only
 * through it, on a private docker network, with a fresh key pair, known_hosts and a
 * temporary inventory. Every container runs systemd as PID 1 from the test image.
 *
 *   const fleet = await startFleet({ targets: 2 });
 *   ... load fleet.inventoryDir, connect, assert with fleet.exec('target1', 'cat /etc/x') ...
 *   await fleet.down();
 */
// No registry is reachable, so Ryuk cannot be pulled; testcontainers reads this when the
// first container starts, so setting it here (before any start) is enough.
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';

import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { stringify } from 'yaml';
import { docker, dockerRun } from '../../src/lab/docker.js';
import { generateKeyPair, writeKeyPair } from '../../src/lab/keypair.js';
import {
  SETUP_SCRIPT,
  SSHD_READY_COMMAND,
  SYSTEMD_COMMAND,
  TEST_IMAGE,
  hostKeyFromPub,
  knownHostsLine,
} from '../../src/lab/systemd-host.js';

/** The test image with the hardening role's packages (test/image/build-baseline.sh). */
const BASELINE_IMAGE = process.env.INFRA_TEST_BASELINE_IMAGE ?? 'infra-test-debian12-baseline:latest';

export interface FleetHost {
  name: string;
  ip: string;
  groups: string[];
}

export interface Fleet {
  /** Temp dir with hosts.yaml, group_vars/, known_hosts, id_ed25519 (+ .pub). */
  inventoryDir: string;
  /** sshd published on 127.0.0.1:<port>; `ip` is its address on the private network. */
  bastion: FleetHost & { port: number };
  /** No published ports: reachable only via the bastion. */
  targets: FleetHost[];
  keyPath: string;
  /** docker exec as root (for test assertions, not for the code under test). */
  exec(host: string, cmd: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** exec that must succeed: its stdout, else an error with the command, exit code and output. */
  sh(host: string, cmd: string): Promise<string>;
  /** Kills that container (for "host dies mid-run" tests); down() still removes it. */
  stop(host: string): Promise<void>;
  /** Its known_hosts line, as written to inventoryDir/known_hosts. */
  hostKeyLine(host: string): Promise<string>;
  down(): Promise<void>;
}

export interface FleetOptions {
  /** Default 2: target1, target2 (group "targets"). */
  targets?: number | { name: string; groups?: string[] }[];
  /** Default true: write known_hosts with every host key. False: an empty known_hosts. */
  knownHosts?: boolean;
  /** Extra sshd_config text on every host (e.g. "MaxSessions 2"); sshd is restarted. */
  sshdConfig?: string;
  /** group name → vars, written to group_vars/<group>.yaml. */
  groupVars?: Record<string, Record<string, unknown>>;
  /** Pass /dev/net/tun to every host (WireGuard's userspace wireguard-go needs it). */
  tun?: boolean;
  /**
   * Targets from the baseline image (test/image/build-baseline.sh: the hardening role's packages
   * installed) instead of the bare one: for role tests that harden their hosts first. The bastion
   * stays bare; hardening.test.ts (the install proven) never sets it.
   */
  baseline?: boolean;
  /** Memory limit per container (the benchmark's scale run packs many). */
  memoryMb?: number;
  /**
   * At most this many containers booting at once (default: all). A hundred systemd boots at once
   * on two cores miss the 60 s start-up timeout; in waves each boots in seconds.
   */
  startConcurrency?: number;
}

/** Labels on every container and network: test/image/remove-leftovers.sh finds orphans by them. */
const LABELS = { 'infra-test': '1', 'infra-test.pid': String(process.pid) };
const BASTION = 'bastion';

export async function startFleet(opts: FleetOptions = {}): Promise<Fleet> {
  await (leftoversRemoved ??= removeLeftovers());
  const specs = targetSpecs(opts.targets ?? 2);
  const dir = await mkdtemp(join(tmpdir(), 'infra-fleet-'));
  const keyPath = join(dir, 'id_ed25519');
  const keys = generateKeyPair(`infra-fleet@${process.pid}`);
  await writeKeyPair(keyPath, keys);

  const network = await createNetwork();
  const containers = new Map<string, StartedTestContainer>();
  const down = async (): Promise<void> => {
    const ids = [...containers.values()].map((c) => c.getId());
    if (ids.length > 0) await dockerRun(['rm', '-f', '-v', ...ids]);
    await dockerRun(['network', 'rm', network]);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const names = [BASTION, ...specs.map((s) => s.name)];
    // Started in parallel (up to startConcurrency at once); each registers itself so down() can
    // clean up after a partial failure.
    const queue = [...names];
    const failures: unknown[] = [];
    const worker = async (): Promise<void> => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        try {
          const image = opts.baseline && name !== BASTION ? BASELINE_IMAGE : TEST_IMAGE;
          containers.set(name, await startHost(name, image, network, name === BASTION, opts.tun ?? false, opts.memoryMb));
        } catch (e) {
          failures.push(e);
          queue.length = 0;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(names.length, opts.startConcurrency ?? names.length) }, worker));
    if (failures.length) throw failures[0];

    const hostKeys = new Map<string, string>();
    await Promise.all(
      names.map(async (name) => {
        const r = await containers
          .get(name)!
          .exec(['sh', '-c', SETUP_SCRIPT, 'sh', keys.publicKey, opts.sshdConfig ?? '']);
        if (r.exitCode !== 0) throw new Error(`fleet: setting up ${name} failed: ${r.output}`);
        hostKeys.set(name, hostKeyFromPub(r.stdout));
      }),
    );

    const b = containers.get(BASTION)!;
    const bastion = { name: BASTION, ip: b.getIpAddress(network), groups: [BASTION], port: b.getMappedPort(22) };
    const targets = specs.map((s) => ({ name: s.name, ip: containers.get(s.name)!.getIpAddress(network), groups: s.groups }));
    const lineOf = (name: string): string => {
      const key = hostKeys.get(name);
      if (!key) throw new Error(`fleet: no host ${name}`);
      return name === BASTION
        ? knownHostsLine('127.0.0.1', bastion.port, key)
        : knownHostsLine(targets.find((t) => t.name === name)!.ip, 22, key);
    };

    await writeInventory(dir, bastion, targets, opts.groupVars ?? {});
    const known = opts.knownHosts === false ? '' : names.map(lineOf).join('\n') + '\n';
    await writeFile(join(dir, 'known_hosts'), known);

    const container = (name: string): StartedTestContainer => {
      const c = containers.get(name);
      if (!c) throw new Error(`fleet: no host ${name} (have: ${[...containers.keys()].join(', ')})`);
      return c;
    };
    return {
      inventoryDir: dir,
      bastion,
      targets,
      keyPath,
      async exec(host, cmd) {
        const r = await container(host).exec(['sh', '-c', cmd]);
        return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
      },
      async sh(host, cmd) {
        const r = await container(host).exec(['sh', '-c', cmd]);
        if (r.exitCode !== 0) throw new Error(`${host}: ${cmd}: exit ${r.exitCode}\n${r.stdout}${r.stderr}`);
        return r.stdout;
      },
      async stop(host) {
        await docker(['kill', container(host).getId()]);
      },
      async hostKeyLine(host) {
        return lineOf(host);
      },
      down,
    };
  } catch (e) {
    await down();
    throw e;
  }
}

let leftoversRemoved: Promise<void> | undefined;

/** Once per test process: containers and networks of test runs that died (not concurrent ones). */
function removeLeftovers(): Promise<void> {
  const script = fileURLToPath(new URL('../image/remove-leftovers.sh', import.meta.url));
  return new Promise((resolve) => execFile('bash', [script], { timeout: 60_000 }, () => resolve()));
}

function targetSpecs(t: NonNullable<FleetOptions['targets']>): { name: string; groups: string[] }[] {
  const list: { name: string; groups?: string[] }[] =
    typeof t === 'number' ? Array.from({ length: t }, (_, i) => ({ name: `target${i + 1}` })) : t;
  const specs = list.map((s) => ({ name: s.name, groups: s.groups ?? ['targets'] }));
  const names = new Set(specs.map((s) => s.name));
  if (names.size !== specs.length || names.has(BASTION)) throw new Error('fleet: target names must be unique and not "bastion"');
  return specs;
}

/**
 * A private network with a small random subnet of our own, so that fleets do not use
 * up docker's default address pools (31 networks) when several test runs share a machine.
 */
async function createNetwork(): Promise<string> {
  const name = `infra-test-${randomBytes(4).toString('hex')}`;
  const labels = Object.entries(LABELS).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
  for (let attempt = 0; ; attempt++) {
    const subnet = `10.213.${randomInt(0, 256)}.0/24`;
    const r = await dockerRun(['network', 'create', '--driver', 'bridge', '--subnet', subnet, ...labels, name]);
    if (r.code === 0) return name;
    if (!/overlap/i.test(r.stderr) || attempt >= 10) throw new Error(`fleet: docker network create failed: ${r.stderr.trim()}`);
  }
}

/** GenericContainer plus what systemd needs that testcontainers has no builder for. */
class SystemdContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    // Docker's API has it; the HostConfig type testcontainers uses does not.
    (this.hostConfig as { CgroupnsMode?: string }).CgroupnsMode = 'host';
  }
  /** Publishes sshd on 127.0.0.1 only (testcontainers would bind every interface). */
  withTunDevice(): this {
    this.hostConfig.Devices = [...(this.hostConfig.Devices ?? []), { PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }];
    return this;
  }
  publishSshOnLoopback(): this {
    this.withExposedPorts(22);
    this.hostConfig.PortBindings = { '22/tcp': [{ HostIp: '127.0.0.1', HostPort: '0' }] };
    return this;
  }
}

async function startHost(name: string, image: string, network: string, publish: boolean, tun: boolean, memoryMb?: number): Promise<StartedTestContainer> {
  const c = new SystemdContainer(image)
    .withCommand(SYSTEMD_COMMAND)
    .withHostname(name)
    .withLabels({ ...LABELS, 'infra-test.host': name })
    .withNetworkMode(network)
    .withAddedCapabilities('SYS_ADMIN', 'NET_ADMIN')
    .withSecurityOpt('seccomp=unconfined')
    .withBindMounts([{ source: '/sys/fs/cgroup', target: '/sys/fs/cgroup', mode: 'rw' }])
    .withTmpFs({ '/run': '', '/run/lock': '' })
    .withWaitStrategy(Wait.forSuccessfulCommand(SSHD_READY_COMMAND.join(' ')))
    .withStartupTimeout(60_000);
  if (publish) c.publishSshOnLoopback();
  if (tun) c.withTunDevice();
  if (memoryMb) c.withResourcesQuota({ memory: memoryMb / 1024 });
  return c.start();
}

async function writeInventory(
  dir: string,
  bastion: FleetHost & { port: number },
  targets: FleetHost[],
  groupVars: Record<string, Record<string, unknown>>,
): Promise<void> {
  const hosts: Record<string, unknown> = {
    [BASTION]: {
      address: '127.0.0.1',
      port: bastion.port,
      groups: [BASTION],
      bastion: null,
      // What the other hosts see (firewall rules open SSH to the bastion's private address).
      vars: { private_address: bastion.ip },
    },
  };
  for (const t of targets) hosts[t.name] = { address: t.ip, groups: t.groups };
  const groups: Record<string, unknown> = {
    all: { user: 'admin', key: './id_ed25519', bastion: BASTION, become: 'sudo' },
  };
  for (const g of new Set([BASTION, ...targets.flatMap((t) => t.groups), ...Object.keys(groupVars)])) {
    if (g !== 'all') groups[g] = {};
  }
  await writeFile(join(dir, 'hosts.yaml'), stringify({ hosts, groups }));
  if (Object.keys(groupVars).length > 0) {
    await mkdir(join(dir, 'group_vars'));
    for (const [g, vars] of Object.entries(groupVars)) {
      await writeFile(join(dir, 'group_vars', `${g}.yaml`), stringify(vars));
    }
  }
}
