/** connection: local — the session shell is a child process of the controller. */
import type { HostSpec } from '../inventory/types.js';
import { spawnChannel } from './local-channel.js';
import { sessionArgv } from './session-script.js';
import { Session } from './session.js';
import { ShellTransport } from './shell-transport.js';

export class LocalTransport extends ShellTransport {
  constructor(private readonly spec: Pick<HostSpec, 'name' | 'conn'>) {
    super(spec.name);
  }

  protected async openSession(): Promise<Session> {
    const t0 = Date.now();
    const password = this.spec.conn.becomePassword?.reveal();
    const ch = spawnChannel(sessionArgv(this.spec.conn.become, password !== undefined));
    this.counters.connections++;
    this.counters.channels++;
    const s = await Session.start(ch, { host: this.host, counters: this.counters, becomePassword: password });
    this.counters.connectMs += Date.now() - t0;
    return s;
  }

  protected async release(): Promise<void> {}
}
