/**
 * Bastions: one ssh2 connection per bastion, shared by every host behind it; each target
 * gets a forwardOut channel (with our own timeout: ssh2 has none there).
 */
import type { Client, ClientChannel } from 'ssh2';
import type { ConnectionSettings, Inventory } from '../inventory/types.js';
import { UserError } from '../errors.js';
import { connectSsh, type SshConnectOptions, type SshEndpoint } from './ssh-connect.js';
import type { Counters } from './types.js';
import { emptyCounters, HostRefused, HostUnreachable } from './types.js';

/** `bastion:` is an inventory host name, or "[user@]address[:port]" (user/key from the target). */
export function resolveBastion(spec: string, target: ConnectionSettings, inventory: Inventory): SshEndpoint {
  const host = inventory.hosts.get(spec);
  if (host) {
    const c = host.conn;
    return { label: spec, address: c.address, port: c.port, user: c.user, key: c.key, keyPassphrase: c.keyPassphrase };
  }
  const m = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d+))?$/.exec(spec);
  if (!m) {
    throw new UserError(`bastion ${JSON.stringify(spec)} is neither an inventory host nor [user@]address[:port]`);
  }
  return {
    label: spec,
    address: m[2].replace(/^\[|\]$/g, ''),
    port: m[3] ? Number(m[3]) : 22,
    user: m[1] ?? target.user,
    key: target.key,
    keyPassphrase: target.keyPassphrase,
  };
}

interface Hub {
  client: Promise<Client>;
  counters: Counters;
}

export class Bastions {
  #hubs = new Map<string, Hub>();
  #counters = new Map<string, Counters>();

  /** connectOpts: by the bastion's label (its inventory name, when it is an inventory host). */
  constructor(private readonly connectOpts: (label: string) => Omit<SshConnectOptions, 'sock'>) {}

  /** A forwarded stream to address:port through the bastion (connecting it on first use). */
  async forward(ep: SshEndpoint, target: string, address: string, port: number, timeoutMs: number): Promise<ClientChannel> {
    const hub = this.#hub(ep);
    let client: Client;
    try {
      client = await hub.client;
    } catch (e) {
      const msg = `bastion ${ep.label}: ${(e as Error).message}`;
      throw e instanceof HostRefused
        ? new HostRefused(target, msg, e.hint)
        : new HostUnreachable(target, msg, { cause: e });
    }
    hub.counters.channels++;
    return new Promise<ClientChannel>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new HostUnreachable(target, `bastion ${ep.label} did not open a channel to ${address}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      try {
        client.forwardOut('127.0.0.1', 0, address, port, (err, stream) => {
          if (stream) stream.on('error', () => {}); // the target's ssh2 client reports it
          if (done) {
            stream?.destroy();
            return;
          }
          done = true;
          clearTimeout(timer);
          if (err) reject(new HostUnreachable(target, `bastion ${ep.label} cannot reach ${address}:${port}: ${err.message}`, { cause: err }));
          else resolve(stream);
        });
      } catch (e) {
        done = true;
        clearTimeout(timer);
        reject(new HostUnreachable(target, `bastion ${ep.label}: ${(e as Error).message}`, { cause: e }));
      }
    });
  }

  /** Per bastion (by its inventory name or spec); kept after closeAll() for the recap. */
  counters(): Record<string, Counters> {
    return Object.fromEntries(this.#counters);
  }

  async closeAll(): Promise<void> {
    const hubs = [...this.#hubs.values()];
    this.#hubs.clear();
    await Promise.all(hubs.map(async (h) => endClient(await h.client.catch(() => undefined))));
  }

  #hub(ep: SshEndpoint): Hub {
    let hub = this.#hubs.get(ep.label);
    if (hub) return hub;
    let counters = this.#counters.get(ep.label);
    if (!counters) this.#counters.set(ep.label, (counters = emptyCounters()));
    const t0 = Date.now();
    const client = connectSsh(ep, this.connectOpts(ep.label)).then((c) => {
      counters!.connections++;
      counters!.connectMs += Date.now() - t0;
      // A lost bastion is forgotten so a later host can try again; its targets are lost with it.
      c.on('close', () => {
        if (this.#hubs.get(ep.label) === hub) this.#hubs.delete(ep.label);
      });
      return c;
    });
    client.catch(() => {}); // rejection is handled by every forward() caller
    hub = { client, counters };
    this.#hubs.set(ep.label, hub);
    return hub;
  }
}

/** client.end() that never throws and resolves once closed (or after 2 s). */
export function endClient(client: Client | undefined): Promise<void> {
  if (!client) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, 2000);
    t.unref();
    client.once('close', () => {
      clearTimeout(t);
      resolve();
    });
    client.on('error', () => {});
    try {
      client.end();
    } catch {
      clearTimeout(t);
      resolve();
    }
  });
}
