/**
 * The transports of one run: created lazily per host, connected on first use, sharing one
 * connection per bastion. closeAll() never throws.
 */
import type { Inventory } from '../inventory/types.js';
import { Bastions } from './bastion.js';
import { KnownHosts } from './known-hosts.js';
import { LocalTransport } from './local.js';
import { SshTransport } from './ssh.js';
import type { ShellTransport } from './shell-transport.js';
import type { Counters, Transport } from './types.js';

export interface TransportOptions {
  knownHostsPath: string;
  /** Record unknown host keys in known_hosts (--accept-new). Changed keys stay fatal. */
  acceptNew?: boolean;
  /** TCP connect, ssh handshake+auth, forwardOut and session start, each (default 10000). */
  connectTimeoutMs?: number;
  /** ssh keepalive (default 15000 ms × 3 misses = unreachable). */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
}

export class TransportPool {
  #transports = new Map<string, ShellTransport>();
  #bastions: Bastions;
  #knownHosts: KnownHosts;

  constructor(
    private readonly inventory: Inventory,
    private readonly opts: TransportOptions,
  ) {
    this.#knownHosts = new KnownHosts(opts.knownHostsPath);
    this.#bastions = new Bastions(() => this.#connectOpts());
  }

  get(host: string): Transport {
    let t = this.#transports.get(host);
    if (t) return t;
    const spec = this.inventory.hosts.get(host);
    if (!spec) throw new Error(`transport: no host ${JSON.stringify(host)} in the inventory`);
    t =
      spec.conn.connection === 'local'
        ? new LocalTransport(spec)
        : new SshTransport(spec, { inventory: this.inventory, bastions: this.#bastions, connectOpts: this.#connectOpts() });
    this.#transports.set(host, t);
    return t;
  }

  /** Per host; bastion connections are added to the bastion's entry (or their own, by spec). */
  counters(): Record<string, Counters> {
    const out: Record<string, Counters> = {};
    for (const [name, t] of this.#transports) out[name] = { ...t.counters };
    for (const [name, c] of Object.entries(this.#bastions.counters())) {
      const mine = (out[name] ??= { ...c, connections: 0, channels: 0, connectMs: 0 });
      mine.connections += c.connections;
      mine.channels += c.channels;
      mine.connectMs += c.connectMs;
    }
    return out;
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.#transports.values()].map((t) => t.close()));
    await this.#bastions.closeAll().catch(() => {});
  }

  #connectOpts() {
    return {
      knownHosts: this.#knownHosts,
      acceptNew: this.opts.acceptNew ?? false,
      timeoutMs: this.opts.connectTimeoutMs ?? 10_000,
      keepaliveIntervalMs: this.opts.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: this.opts.keepaliveCountMax ?? 3,
      env: this.inventory.env,
    };
  }
}
