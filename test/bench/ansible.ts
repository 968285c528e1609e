/**
 * The Ansible side: installed from Debian when missing, configured from the fleet (same hosts,
 * same key, same known_hosts, ProxyJump through the same bastion), tuned fairly:
 * pipelining, forks ≥ N, ControlMaster/ControlPersist, an explicit Python interpreter (no
 * discovery round trip), facts only where infra gathers them too (the `min` subset).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Fleet } from '../integration/fleet.js';
import { measure, type Measured } from './measure.js';

export const ANSIBLE_DIR = fileURLToPath(new URL('./ansible/', import.meta.url));

export function ansibleVersion(): string | null {
  try {
    return execFileSync('ansible-playbook', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return null;
  }
}

/** Installs Debian's ansible package when ansible-playbook is missing (root, or sudo -n). */
export function ensureAnsible(log: (s: string) => void): string {
  const have = ansibleVersion();
  if (have) return have;
  log('ansible-playbook not found: installing Debian\'s ansible package');
  const asRoot = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const run = (args: string[]): void => {
    const [cmd, ...rest] = [...asRoot, ...args];
    execFileSync(cmd!, rest, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  };
  run(['apt-get', 'update', '-qq']);
  run(['apt-get', 'install', '-y', '-qq', 'ansible']);
  const now = ansibleVersion();
  if (!now) throw new Error('bench: ansible-playbook still missing after apt-get install ansible');
  return now;
}

export interface AnsibleSetup {
  /** Generated files live here; its path also marks Ansible's detached ssh processes. */
  dir: string;
  env: NodeJS.ProcessEnv;
}

/**
 * Writes hosts.ini, ssh_config and ansible.cfg for this fleet into `dir` (keep it short:
 * ControlPath sockets must fit in 108 bytes).
 */
export async function writeAnsibleSetup(fleet: Fleet, dir: string): Promise<AnsibleSetup> {
  await mkdir(join(dir, 'cp'), { recursive: true });
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const knownHosts = join(fleet.inventoryDir, 'known_hosts');
  const common = [
    '  User admin',
    `  IdentityFile ${fleet.keyPath}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${knownHosts}`,
    '  StrictHostKeyChecking yes',
  ];
  const sshConfig = [
    'Host bastion',
    '  HostName 127.0.0.1',
    `  Port ${fleet.bastion.port}`,
    ...common,
    `Host ${fleet.targets.map((t) => t.ip).join(' ')}`,
    '  ProxyJump bastion',
    ...common,
    '',
  ].join('\n');
  const inventory = [
    '[targets]',
    ...fleet.targets.map((t) => `${t.name} ansible_host=${t.ip}`),
    '',
    '[targets:vars]',
    'ansible_user=admin',
    `ansible_ssh_private_key_file=${fleet.keyPath}`,
    'ansible_python_interpreter=/usr/bin/python3',
    '',
  ].join('\n');
  const forks = Math.max(fleet.targets.length, 5);
  const cfg = [
    '[defaults]',
    `inventory = ${join(dir, 'hosts.ini')}`,
    `forks = ${forks}`,
    'host_key_checking = True',
    '# Plays say gather_facts explicitly (min subset, like infra); ad-hoc commands gather none.',
    'gathering = explicit',
    'interpreter_python = /usr/bin/python3',
    'retry_files_enabled = False',
    'nocolor = True',
    'deprecation_warnings = False',
    `local_tmp = ${join(dir, 'tmp')}`,
    '',
    '[ssh_connection]',
    'pipelining = True',
    '# Retries a connection that ssh itself failed (exit 255), as production configs do.',
    'retries = 3',
    `ssh_args = -F ${join(dir, 'ssh_config')} -o ControlMaster=auto -o ControlPersist=60s`,
    `control_path_dir = ${join(dir, 'cp')}`,
    'control_path = %(directory)s/%%C',
    '',
  ].join('\n');
  await writeFile(join(dir, 'ssh_config'), sshConfig, { mode: 0o600 });
  await writeFile(join(dir, 'hosts.ini'), inventory);
  await writeFile(join(dir, 'ansible.cfg'), cfg);
  const env = { ...process.env, ANSIBLE_CONFIG: join(dir, 'ansible.cfg'), ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0' };
  return { dir, env };
}

export interface AnsibleRun {
  m: Measured;
  /** Per host, from the PLAY RECAP (playbooks) or the ad-hoc result lines. */
  hosts: Map<string, { ok: number; changed: number; failed: number; unreachable: number }>;
}

export async function runAnsiblePlaybook(setup: AnsibleSetup, playbook: string): Promise<AnsibleRun> {
  const m = await measure('ansible-playbook', [join(ANSIBLE_DIR, playbook)], {
    cwd: ANSIBLE_DIR,
    env: setup.env,
    detachedMarker: setup.dir,
    timeoutMs: 30 * 60_000,
  });
  return { m, hosts: parsePlayRecap(m.stdout) };
}

/** W1: `ansible targets -b -m command -a CMD` (become, like infra's session with become: sudo). */
export async function runAnsibleAdhoc(setup: AnsibleSetup, cmd: string): Promise<AnsibleRun> {
  const m = await measure('ansible', ['targets', '-b', '-m', 'ansible.builtin.command', '-a', cmd], {
    cwd: ANSIBLE_DIR,
    env: setup.env,
    detachedMarker: setup.dir,
    timeoutMs: 10 * 60_000,
  });
  return { m, hosts: parseAdhoc(m.stdout) };
}

/** "target1 : ok=11 changed=10 unreachable=0 failed=0 skipped=0 ..." lines. */
export function parsePlayRecap(stdout: string): AnsibleRun['hosts'] {
  const out: AnsibleRun['hosts'] = new Map();
  const at = stdout.lastIndexOf('PLAY RECAP');
  if (at < 0) return out;
  for (const line of stdout.slice(at).split('\n').slice(1)) {
    const m = /^(\S+)\s+:\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const n = (k: string): number => Number(new RegExp(`\\b${k}=(\\d+)`).exec(m[2]!)?.[1] ?? NaN);
    out.set(m[1]!, { ok: n('ok'), changed: n('changed'), failed: n('failed'), unreachable: n('unreachable') });
  }
  return out;
}

/** "target1 | CHANGED | rc=0 >>" / "target1 | FAILED | rc=1 >>" / "target1 | UNREACHABLE! => {". */
export function parseAdhoc(stdout: string): AnsibleRun['hosts'] {
  const out: AnsibleRun['hosts'] = new Map();
  for (const line of stdout.split('\n')) {
    const m = /^(\S+) \| ([A-Z!]+)/.exec(line);
    if (!m) continue;
    const status = m[2]!;
    const ok = status === 'CHANGED' || status === 'SUCCESS';
    out.set(m[1]!, { ok: ok ? 1 : 0, changed: status === 'CHANGED' ? 1 : 0, failed: status === 'FAILED' ? 1 : 0, unreachable: status.startsWith('UNREACHABLE') ? 1 : 0 });
  }
  return out;
}
