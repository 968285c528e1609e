/**
 * A small simulated fleet behind the patch run's Remote interface, for the rollout's decisions
 * without containers: packages with versions, HAProxy admin state on the load balancers (the
 * admin-socket output haproxy.server parses), a keepalived VIP, post-check results. Commands
 * are recognized by what they say; anything else is an error (an unexpected command is a bug).
 */
import type { Facts } from '../../../src/facts/types.js';
import type { HostContext } from '../../../src/modules/types.js';
import type { RunResult } from '../../../src/transport/types.js';
import type { Remote } from '../../../src/patch/remote.js';
import { FAILED_UNITS_COMMAND, SCAN_COMMAND } from '../../../src/patch/apt.js';
import { facts as baseFacts } from '../modules/fake-host.js';

export interface FakeHost {
  groups: string[];
  address: string;
  vars?: Record<string, unknown>;
  /** Installed → candidate, from the security suite. */
  packages: Record<string, { installed: string; candidate: string }>;
  /** Exit code of any post-check after the upgrade. */
  postCheck?: number;
  /** The API server answers HAProxy's health check. */
  healthy?: boolean;
  keepalived?: boolean;
  container?: string;
}

export class FakeFleet implements Remote {
  readonly log: string[] = [];
  readonly announced: string[] = [];
  /** lb → server → admin state ('ready' | 'drain'). */
  readonly admin = new Map<string, Map<string, 'ready' | 'drain'>>();
  vipOn: string | undefined;

  constructor(readonly hostsByName: Record<string, FakeHost>) {
    for (const [lb, h] of Object.entries(hostsByName)) {
      if (!h.groups.includes('lb')) continue;
      this.admin.set(lb, new Map(this.hosts('api').map((s) => [s, 'ready' as const])));
    }
  }

  #host(name: string): FakeHost {
    const h = this.hostsByName[name];
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  hosts(pattern: string): string[] {
    return Object.keys(this.hostsByName).filter((h) => pattern === 'all' || this.hostsByName[h].groups.includes(pattern));
  }
  vars(host: string): Record<string, unknown> {
    return this.#host(host).vars ?? {};
  }
  address(host: string): string {
    return this.#host(host).address;
  }
  facts(host: string): Facts {
    return { ...baseFacts, hostname: host, container: this.#host(host).container ?? 'none' };
  }
  async reconnect(): Promise<void> {}
  announce(host: string, message: string): void {
    this.announced.push(`${host}: ${message}`);
  }
  context(host: string): HostContext {
    return { name: host, run: (cmd: string) => this.run(host, cmd) } as unknown as HostContext;
  }

  async run(host: string, cmd: string): Promise<RunResult> {
    this.log.push(`${host}: ${cmd}`);
    const h = this.#host(host);
    const ok = (stdout = '', code = 0): RunResult => ({ code, stdout, stderr: '', stdoutBytes: Buffer.from(stdout) });
    if (cmd === SCAN_COMMAND) {
      const inst = Object.entries(h.packages)
        .filter(([, p]) => p.installed !== p.candidate)
        .map(([n, p]) => `Inst ${n} [${p.installed}] (${p.candidate} Debian-Security:12/stable-security [amd64])`);
      return ok(`@@infra-patch@@sim\n${inst.join('\n')}\n@@infra-patch@@reboot\n`);
    }
    if (cmd.includes('install --only-upgrade') || cmd.includes('upgrade --with-new-pkgs')) {
      for (const p of Object.values(h.packages)) p.installed = p.candidate;
      if (h.groups.includes('api') && h.postCheck) h.healthy = false;
      return ok();
    }
    if (cmd.includes('dpkg-query -W')) return ok(`@@infra-patch@@dpkg\n${Object.entries(h.packages).map(([n, p]) => `${n}\t${p.installed}\tii `).join('\n')}\n@@infra-patch@@reboot\n`);
    if (cmd === FAILED_UNITS_COMMAND) return ok();
    if (cmd.startsWith('for p in')) return ok('');
    if (cmd === 'curl -f localhost/health') return ok('', h.postCheck ?? 0);
    // HAProxy's admin socket (haproxy.server's read script and its set command).
    const set = /set server (\w+)\/(\w+) state (\w+)/.exec(cmd);
    if (set) {
      this.admin.get(host)!.set(set[2], set[3] as 'ready' | 'drain');
      return ok();
    }
    if (cmd.includes('show servers state')) {
      const servers = [...this.admin.get(host)!];
      const state = ['1', '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state', ...servers.map(([s, a], i) => `3 api ${i + 1} ${s} ${this.address(s)} ${this.#host(s).healthy === false ? 0 : 2} ${a === 'drain' ? 8 : 0}`)];
      const stat = ['# pxname,svname,scur,status', ...servers.map(([s, a]) => `api,${s},0,${this.#host(s).healthy === false ? 'DOWN' : a === 'drain' ? 'DRAIN' : 'UP'}`)];
      return ok(`@@infra-haproxy@@state\n${state.join('\n')}\n@@infra-haproxy@@stat\n${stat.join('\n')}\n`);
    }
    // keepalived and the VIP.
    if (cmd.startsWith('ip -4 -o addr show')) return ok('', this.vipOn === host ? 0 : 1);
    if (cmd === 'systemctl stop keepalived') {
      h.keepalived = false;
      if (this.vipOn === host) this.vipOn = this.hosts('lb').find((x) => x !== host && this.#host(x).keepalived !== false);
      return ok();
    }
    if (cmd.startsWith('systemctl start keepalived')) {
      h.keepalived = true;
      this.vipOn ??= host;
      return ok();
    }
    if (cmd === 'systemctl is-active -q keepalived haproxy') return ok('', h.keepalived === false ? 3 : 0);
    if (cmd === 'systemctl is-active -q haproxy') return ok();
    throw new Error(`fake fleet: unexpected command on ${host}:\n${cmd}`);
  }
}
