/**
 * The patch policy: ordinary inventory variables, validated here (no inventory-format change).
 *
 *   # group_vars/api.yaml
 *   patch:
 *     order: 20                     # groups patch in ascending order
 *     serial: 1                     # hosts at a time
 *     strategy: haproxy-drain       # how a host leaves service while it is patched
 *     post: ["curl -fsS -o /dev/null http://127.0.0.1/health"]
 *
 * A host belongs to the most specific group whose vars set `patch` (its patch group); `all`
 * when none does. Its policy is its merged `patch` variable, so `group_vars/all.yaml` holds
 * the defaults, a group overrides them, and host_vars may change what is per host (hooks,
 * reboot, window). What shapes the rollout (order, serial, strategy and its options) must be
 * the same for every host of a patch group.
 */
import { z } from 'zod';
import { UserError, UserErrors, formatPos, type SourcePos } from '../errors.js';
import type { Inventory } from '../inventory/types.js';
import { DEFAULT_ADMIN_SOCKET } from '../modules/haproxy.js';
import { formatPath } from '../yaml/positions.js';
import { parseWindow, type MaintenanceWindow } from './window.js';

export const STRATEGIES = ['none', 'keepalived-vip', 'haproxy-drain', 'redis-sentinel', 'postgres'] as const;
export type StrategyName = (typeof STRATEGIES)[number];
/** Strategies of clusters whose members must never be out two at a time. */
const ONE_AT_A_TIME: readonly StrategyName[] = ['keepalived-vip', 'redis-sentinel', 'postgres'];

const proxyName = z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'an HAProxy backend name');
const seconds = z.number().int().positive();
/** Hooks are the inventory author's own shell commands, run as root on the host (like `infra exec`). */
const commands = z.array(z.string().min(1)).default([]);

export const policySchema = z
  .object({
    order: z.number().int().default(50),
    serial: z.union([z.number().int().min(1), z.string().regex(/^([1-9]\d?|100)%$/, 'a percentage like "25%"')]).default(1),
    strategy: z.enum(STRATEGIES).default('none'),
    /** haproxy-drain: the backend and the load balancers whose admin socket drains the host. */
    haproxy: z
      .object({
        backend: proxyName.default('api'),
        lbs: z.string().min(1).default('lb'),
        socket: z.string().regex(/^\/[^\s]*$/, 'an absolute path').default(DEFAULT_ADMIN_SOCKET),
        drain_timeout_s: seconds.default(120),
        up_timeout_s: seconds.default(120),
      })
      .strict()
      .default({}),
    /** postgres: how the primary is patched (replicas always first). */
    postgres: z.object({ primary: z.enum(['downtime', 'switchover']).default('downtime') }).strict().default({}),
    /** Run on the host after it left service, before the upgrade. */
    pre: commands,
    /** Health checks on the host after the upgrade (and reboot): any non-zero exit stops the rollout. */
    post: commands,
    reboot: z.enum(['auto', 'never', 'always']).default('auto'),
    /** Without a reboot (containers, the bastion): restart the running services of upgraded packages. */
    restart_services: z.boolean().default(true),
    reboot_timeout_s: seconds.default(600),
    /** A name in `patch_windows`: the host is patched only while it is open. */
    window: z.string().min(1).optional(),
  })
  .strict();
export type PatchPolicy = z.infer<typeof policySchema>;

/** `patch_windows: { sunday: "Sun 02:00-04:00 Europe/Berlin", nights: ["Mon-Fri 22:00-23:30 UTC"] }` */
const windowsSchema = z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), z.union([z.string(), z.array(z.string()).min(1)]));

/** What shapes the rollout: one value per patch group. */
const GROUP_LEVEL = ['order', 'serial', 'strategy', 'haproxy', 'postgres'] as const;

export interface HostPolicy {
  host: string;
  group: string;
  policy: PatchPolicy;
  /** The open/close times of its policy's window, when it has one. */
  window?: { name: string; periods: MaintenanceWindow[] };
}

export interface PatchGroup {
  name: string;
  order: number;
  serial: number | string;
  strategy: StrategyName;
  policy: PatchPolicy;
  /** In inventory order (a strategy may reorder them live: replicas first, the VIP holder last). */
  hosts: string[];
}

/** Policies of `hosts` (validated) and their patch groups, in rollout order (order, then inventory order). */
export function resolvePolicies(inv: Inventory, hosts: string[]): { hosts: Map<string, HostPolicy>; groups: PatchGroup[] } {
  const errors: UserError[] = [];
  const out = new Map<string, HostPolicy>();
  const ancestors = ancestorsOf(inv);
  for (const host of hosts) {
    try {
      out.set(host, hostPolicy(inv, host, ancestors));
    } catch (e) {
      if (e instanceof UserErrors) errors.push(...e.errors);
      else if (e instanceof UserError) errors.push(e);
      else throw e;
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new UserErrors(errors);

  const groups = new Map<string, PatchGroup>();
  for (const hp of out.values()) {
    const g = groups.get(hp.group);
    if (!g) {
      groups.set(hp.group, { name: hp.group, order: hp.policy.order, serial: hp.policy.serial, strategy: hp.policy.strategy, policy: hp.policy, hosts: [hp.host] });
      continue;
    }
    const differs = GROUP_LEVEL.find((k) => JSON.stringify(hp.policy[k]) !== JSON.stringify(g.policy[k]));
    if (differs) {
      errors.push(
        new UserError(`host ${hp.host} sets patch.${differs} to ${JSON.stringify(hp.policy[differs])}, its patch group ${g.name} to ${JSON.stringify(g.policy[differs])}`, {
          pos: posOf(inv, hp.host, 'patch'),
          hint: `patch.${GROUP_LEVEL.join(', patch.')} shape the rollout of the whole group: set them in group_vars/${g.name}.yaml only`,
        }),
      );
    }
    g.hosts.push(hp.host);
  }
  for (const g of groups.values()) {
    if (ONE_AT_A_TIME.includes(g.strategy) && g.serial !== 1) {
      errors.push(
        new UserError(`patch group ${g.name}: strategy ${g.strategy} patches one member at a time (serial is ${JSON.stringify(g.serial)})`, {
          pos: posOf(inv, g.hosts[0], 'patch'),
          hint: 'never two members of a cluster down at once: remove patch.serial or set it to 1',
        }),
      );
    }
    if (g.strategy === 'postgres' && g.policy.postgres.primary === 'switchover') {
      errors.push(
        new UserError(`patch group ${g.name}: postgres.primary: switchover is not available yet (it comes with the DR playbooks)`, {
          pos: posOf(inv, g.hosts[0], 'patch'),
          hint: 'use postgres: { primary: downtime } — the primary is patched last, in a short announced downtime',
        }),
      );
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new UserErrors(errors);
  const inventoryOrder = [...inv.hosts.keys()];
  return {
    hosts: out,
    groups: [...groups.values()].sort((a, b) => a.order - b.order || inventoryOrder.indexOf(a.hosts[0]) - inventoryOrder.indexOf(b.hosts[0])),
  };
}

function hostPolicy(inv: Inventory, host: string, ancestors: Map<string, Set<string>>): HostPolicy {
  const spec = inv.hosts.get(host)!;
  const group = patchGroupOf(inv, host, ancestors);
  const parsed = policySchema.safeParse(spec.vars.patch ?? {});
  if (!parsed.success) throw new UserErrors(parsed.error.issues.map((i) => varError(inv, host, 'patch', i)));
  const policy = parsed.data;
  if (!policy.window) return { host, group, policy };
  const windows = windowsSchema.safeParse(spec.vars.patch_windows ?? {});
  if (!windows.success) throw new UserErrors(windows.error.issues.map((i) => varError(inv, host, 'patch_windows', i)));
  const spec_ = windows.data[policy.window];
  if (spec_ === undefined) {
    throw new UserError(`host ${host}: patch.window "${policy.window}" is not in patch_windows (${Object.keys(windows.data).join(', ') || 'none defined'})`, {
      pos: posOf(inv, host, 'patch'),
      hint: 'define it in group_vars/all.yaml: patch_windows: { NAME: "Sun 02:00-04:00 Europe/Berlin" }',
    });
  }
  const periods = (Array.isArray(spec_) ? spec_ : [spec_]).map((text) => {
    try {
      return parseWindow(text);
    } catch (e) {
      throw new UserError(`patch_windows.${policy.window}: ${(e as Error).message}`, {
        pos: posOf(inv, host, 'patch_windows'),
        hint: 'DAYS HH:MM-HH:MM TIMEZONE, e.g. "Sun 02:00-04:00 Europe/Berlin", "Mon-Fri 22:00-23:30 UTC", "Sat,Sun 23:00-01:00 UTC"',
      });
    }
  });
  return { host, group, policy, window: { name: policy.window, periods } };
}

/**
 * The most specific group of the host whose vars set `patch`; `all` when none does. Two
 * groups of the host that both set it, neither inside the other, leave it ambiguous: an error.
 */
function patchGroupOf(inv: Inventory, host: string, ancestors: Map<string, Set<string>>): string {
  const spec = inv.hosts.get(host)!;
  const setting = spec.groups.filter((g) => inv.groups.get(g)?.vars.patch !== undefined);
  const specific = setting.filter((g) => !setting.some((other) => other !== g && ancestors.get(other)?.has(g)));
  if (specific.length > 1) {
    const where = specific.map((g) => `${g} (${sourceOf(inv, host, 'patch', g)})`).join(' and ');
    throw new UserError(`host ${host} is in two patch groups: ${where}`, {
      pos: spec.pos,
      hint: 'set patch: in one of them only (or in a group that holds both), so the host is patched once, by one policy',
    });
  }
  return specific[0] ?? 'all';
}

/** Group → every group it is inside (parents, their parents, ... and all). */
function ancestorsOf(inv: Inventory): Map<string, Set<string>> {
  const parents = new Map<string, string[]>();
  for (const g of inv.groups.values()) for (const c of g.children) parents.set(c, [...(parents.get(c) ?? []), g.name]);
  const out = new Map<string, Set<string>>();
  const walk = (g: string, seen: Set<string>): Set<string> => {
    for (const p of parents.get(g) ?? []) if (!seen.has(p)) walk(p, seen.add(p));
    return seen;
  };
  for (const g of inv.groups.keys()) out.set(g, g === 'all' ? new Set() : walk(g, new Set(['all'])));
  return out;
}

function sourceOf(inv: Inventory, host: string, name: string, group: string): string {
  const src = inv.hosts.get(host)!.provenance.get(name)?.find((s) => s.level === 'group' && s.scope === group);
  return src?.pos ? formatPos(src.pos) : `group ${group}`;
}

/** Where the host's value of a top-level variable was last set. */
function posOf(inv: Inventory, host: string, name: string): SourcePos | undefined {
  const sources = inv.hosts.get(host)!.provenance.get(name);
  return sources?.[sources.length - 1]?.pos ?? inv.hosts.get(host)!.pos;
}

function varError(inv: Inventory, host: string, name: string, issue: z.ZodIssue): UserError {
  const path = formatPath([name, ...issue.path]);
  const message =
    issue.code === 'unrecognized_keys'
      ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
      : issue.code === 'invalid_enum_value'
        ? `expected one of ${issue.options.join(', ')}`
        : issue.message;
  return new UserError(`${path} (host ${host}): ${message}`, {
    pos: posOf(inv, host, name),
    hint: name === 'patch' ? `allowed keys: ${Object.keys(policySchema.shape).join(', ')} (README: infra patch)` : 'a mapping of window names to "DAYS HH:MM-HH:MM TIMEZONE" (or lists of them)',
  });
}
