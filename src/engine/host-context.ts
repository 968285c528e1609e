/**
 * What a module sees of the host it runs on (HostContext), and the one place template data is
 * built: every render — a role template, a task passing its own `vars:` — gets the same
 * vars/host/facts/groups, with task vars merged over the host's vars, never replacing them.
 */
import type { Inventory } from '../inventory/types.js';
import type { Facts } from '../facts/types.js';
import type { HostContext, HostView, ProbeResult } from '../modules/types.js';
import { redact } from '../secrets/secret.js';
import { messageOf } from '../errors.js';
import type { BoundTask } from './types.js';
import type { HostRun, TransportSource } from './host-run.js';
import type { RunKeeper } from '../rollback/keeper.js';

/** Read-only views of the inventory's hosts for cross-host data; facts are live (filled as hosts connect). */
export class HostViews {
  #views = new Map<string, HostView>();
  #groups?: Record<string, HostView[]>;

  constructor(
    private readonly inventory: Inventory,
    private readonly hostsMatching: (pattern: string) => string[],
    private readonly factsOf: (host: string) => Facts | undefined,
  ) {}

  one(name: string): HostView {
    let v = this.#views.get(name);
    if (!v) {
      const spec = this.inventory.hosts.get(name)!;
      const factsOf = this.factsOf;
      v = {
        name,
        address: spec.conn.address,
        groups: spec.groups,
        vars: spec.vars,
        get facts() {
          return factsOf(name);
        },
      };
      this.#views.set(name, v);
    }
    return v;
  }

  matching(pattern: string): HostView[] {
    return this.hostsMatching(pattern).map((n) => this.one(n));
  }

  /** Group name → its hosts, for templates (`{{#each groups.web}}`). */
  groups(): Record<string, HostView[]> {
    if (!this.#groups) {
      this.#groups = {};
      for (const g of this.inventory.groups.keys()) this.#groups[g] = this.matching(g);
    }
    return this.#groups;
  }
}

/**
 * The data every template sees (the executor and the offline validation of engine/validate.ts
 * both build it here): a task's own `vars:` merge over the host's vars, never replace them.
 */
export function templateData(
  hostVars: Record<string, unknown>,
  taskVars: Record<string, unknown> | undefined,
  host: { name: string; address: string; groups: string[] },
  facts: Facts,
  groups: Record<string, HostView[]>,
): Record<string, unknown> {
  return { vars: taskVars ? { ...hostVars, ...taskVars } : hostVars, host, facts, groups };
}

export interface ContextEnv {
  inventory: Inventory;
  views: HostViews;
  transports: TransportSource;
  renderFile(roleDir: string, src: string, data: Record<string, unknown>): Promise<string>;
  readRoleFile(roleDir: string, src: string): Promise<Buffer>;
  /** Another inventory host joins the run (connected, locked, facts): HostContext.onHost. */
  join?(host: string): Promise<HostRun>;
  /** Set when the run keeps what it replaces (apply, run): put() and remove() keep through it. */
  keep?: RunKeeper;
}

/** How long the probe's `true` may take once connected (connecting is bounded by the transport). */
const PROBE_TIMEOUT_MS = 10_000;

/** The HostContext of one task on one connected host. In check mode put() and remove() are refused. */
export function hostContext(env: ContextEnv, h: HostRun, bt: BoundTask, checkMode: boolean): HostContext {
  const t = h.transport!;
  const spec = env.inventory.hosts.get(h.name)!;
  const self = { name: h.name, address: spec.conn.address, groups: spec.groups };
  const keeper = checkMode ? undefined : env.keep?.host(h.name);
  const task = keeper?.nextTask() ?? 0;
  const refuse = (path: string) => Promise.reject(new Error(`bug: a module tried to write ${path} in check mode`));
  return {
    ...self,
    vars: bt.vars,
    facts: h.facts!,
    checkMode,
    run: (cmd, o) => t.run(cmd, o),
    put: (path, bytes, o) => {
      if (checkMode) return refuse(path);
      return keeper ? keeper.put(t, task, path, bytes, o) : t.put(path, bytes, o);
    },
    remove: (path) => {
      if (checkMode) return refuse(path);
      return keeper ? keeper.remove(t, task, path) : t.remove(path);
    },
    get: (path) => t.get(path),
    render: (src, extra) => {
      if (!bt.roleDir) return Promise.reject(new Error(`template ${src}: this task has no role or playbook directory`));
      return env.renderFile(bt.roleDir, src, templateData(bt.vars, extra?.vars, self, h.facts!, env.views.groups()));
    },
    roleFile: (src) => {
      if (!bt.roleDir) return Promise.reject(new Error(`file ${src}: this task has no role or playbook directory`));
      return env.readRoleFile(bt.roleDir, src);
    },
    hosts: (pattern) => env.views.matching(pattern),
    probeConnection: () => probe(env.transports, h.name),
    cached: <T>(key: string, read: () => Promise<T>): Promise<T> => {
      let p = h.reads.get(key) as Promise<T> | undefined;
      if (!p) {
        p = read();
        h.reads.set(key, p);
        // A failed read is not remembered: the next task asks again.
        p.catch(() => h.reads.get(key) === p && h.reads.delete(key));
      }
      return p;
    },
    inventory: env.inventory,
    // Read-only probes of cluster peers through their own sessions (src/cluster/live.ts).
    peerRun: (name, cmd, o) => env.transports.get(name).run(cmd, o),
    // A step acting on another host (draining this one on the load balancers).
    onHost: env.join ? async (name) => hostContext(env, await env.join!(name), bt, checkMode) : undefined,
  };
}

/** A new connection through the same route (bastion included) as the host's session: connect, run `true`, close. */
async function probe(transports: TransportSource, host: string): Promise<ProbeResult> {
  const t0 = Date.now();
  const t = transports.open(host);
  try {
    await t.connect();
    const r = await t.run('true', { timeoutMs: PROBE_TIMEOUT_MS });
    if (r.code !== 0) return { ok: false, ms: Date.now() - t0, error: `\`true\` exited ${r.code}` };
    return { ok: true, ms: Date.now() - t0 };
  } catch (e) {
    return { ok: false, ms: Date.now() - t0, error: redact(messageOf(e)) };
  } finally {
    await t.close();
  }
}
