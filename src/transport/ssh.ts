/**
 * connection: ssh — one ssh2 connection per host (directly, or over a forwarded channel of
 * the shared bastion connection) and ONE exec channel on it: the session shell, started as
 * `sh`, `sudo -n sh` or `sudo -S sh` (password sent once, on sudo's prompt).
 */
import type { Client } from 'ssh2';
import type { HostSpec, Inventory } from '../inventory/types.js';
import { endClient, resolveBastion, type Bastions } from './bastion.js';
import { sessionCommandLine } from './session-script.js';
import { Session } from './session.js';
import { ShellTransport } from './shell-transport.js';
import { connectSsh, type SshConnectOptions } from './ssh-connect.js';
import { execChannel, sshSessionChannel } from './ssh-channel.js';
import { HostUnreachable } from './types.js';

export interface SshTransportDeps {
  inventory: Inventory;
  bastions: Bastions;
  connectOpts: Omit<SshConnectOptions, 'sock'>;
}

export class SshTransport extends ShellTransport {
  #client?: Client;

  constructor(
    private readonly spec: HostSpec,
    private readonly deps: SshTransportDeps,
  ) {
    super(spec.name);
  }

  protected async openSession(): Promise<Session> {
    const t0 = Date.now();
    const c = this.spec.conn;
    const { connectOpts } = this.deps;
    const sock = c.bastion
      ? await this.deps.bastions.forward(
          resolveBastion(c.bastion, c, this.deps.inventory),
          this.host,
          c.address,
          c.port,
          connectOpts.timeoutMs,
        )
      : undefined;
    if (sock) this.counters.channels++;
    const ep = { label: this.host, address: c.address, port: c.port, user: c.user, key: c.key, keyPassphrase: c.keyPassphrase };
    const client = await connectSsh(ep, { ...connectOpts, sock });
    this.#client = client;
    this.counters.connections++;

    const password = c.becomePassword?.reveal();
    let ch;
    try {
      ch = await execChannel(client, sessionCommandLine(c.become, password !== undefined));
    } catch (e) {
      await this.release();
      throw new HostUnreachable(this.host, `cannot open the session channel: ${(e as Error).message}`, { cause: e });
    }
    this.counters.channels++;
    try {
      const s = await Session.start(sshSessionChannel(client, ch), {
        host: this.host,
        counters: this.counters,
        becomePassword: password,
        readyTimeoutMs: connectOpts.timeoutMs,
      });
      return s;
    } catch (e) {
      await this.release();
      throw e;
    } finally {
      this.counters.connectMs += Date.now() - t0;
    }
  }

  protected async release(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    await endClient(c);
  }
}
