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
  /** ssh keepalive for every host, over the inventory's (default 15000 ms × 3 misses = unreachable). */
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
    this.#bastions = new Bastions((label) => this.#connectOpts(label));
  }

  get(host: string): Transport {
    let t = this.#transports.get(host);
    if (!t) this.#transports.set(host, (t = this.#create(host)));
    return t;
  }

  /** A new transport through the same route (sharing the bastion connection), kept nowhere: the caller closes it. */
  open(host: string): Transport {
    return this.#create(host);
  }

  /** After a reboot dropped the host's session: a new transport in its place (get() returns it), the old one closed. */
  async reopen(host: string): Promise<Transport> {
    await this.#transports.get(host)?.close();
    const t = this.#create(host);
    this.#transports.set(host, t);
    return t;
  }

  /**
   * Starts connecting to these hosts while the caller still prepares the run (loading roles,
   * checking tasks offline): the handshakes overlap that work. The run's connect() takes each
   * outcome; hosts never used are closed by closeAll() like any other.
   */
  warm(hosts: Iterable<string>): void {
    for (const h of hosts) if (this.inventory.hosts.has(h)) (this.get(h) as ShellTransport).warm();
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

  /** Kills what runs on every host and drops every session (see Transport.abort). */
  async abortAll(): Promise<void> {
    await Promise.allSettled([...this.#transports.values()].map((t) => t.abort()));
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.#transports.values()].map((t) => t.close()));
    await this.#bastions.closeAll().catch(() => {});
  }

  #create(host: string): ShellTransport {
    const spec = this.inventory.hosts.get(host);
    if (!spec) throw new Error(`transport: no host ${JSON.stringify(host)} in the inventory`);
    return spec.conn.connection === 'local'
      ? new LocalTransport(spec)
      : new SshTransport(spec, { inventory: this.inventory, bastions: this.#bastions, connectOpts: this.#connectOpts(host) });
  }

  /** For a host (or a bastion given by spec, not in the inventory: the defaults). */
  #connectOpts(host: string) {
    const conn = this.inventory.hosts.get(host)?.conn;
    return {
      knownHosts: this.#knownHosts,
      acceptNew: this.opts.acceptNew ?? false,
      timeoutMs: this.opts.connectTimeoutMs ?? 10_000,
      keepaliveIntervalMs: this.opts.keepaliveIntervalMs ?? conn?.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: this.opts.keepaliveCountMax ?? conn?.keepaliveCountMax ?? 3,
      env: this.inventory.env,
    };
  }
}
