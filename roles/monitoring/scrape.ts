/**
 * What Prometheus scrapes, from the inventory (pure): one job per exporter over the hosts of
 * its group, the Sentinels through a Redis host's exporter, the public endpoint through the
 * blackbox exporter, and the monitoring hosts themselves. Every target carries
 * `instance=<inventory host name>`: alerts name hosts as on-call knows them, and one
 * inhibition rule (HostDown) matches every job of a host.
 */
import { UserError, privateAddress, type HostView } from 'infra';
import type { Exporter, MonitoringVars } from './vars.js';

export interface Target {
  /** host:port Prometheus connects to. */
  endpoint: string;
  /** Labels of the target (instance first). */
  labels: Record<string, string>;
}

export interface Job {
  name: string;
  path: string;
  /** Labels __param_<name> become URL parameters (a blackbox probe's target and module). */
  targets: Target[];
}

type Hosts = (pattern: string) => HostView[];

/** "10.0.0.5:9100", "[fd00::5]:9100". */
export const endpoint = (address: string, port: number): string => `${address.includes(':') ? `[${address}]` : address}:${port}`;

/** A value at a dotted path of a host's variables ("postgres_exporter.port"). */
function varAt(vars: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), vars);
}

/** The port a host's own role uses, when its variables set it; else the default. */
function portOf(h: HostView, port: number, portVar?: string): number {
  const v = portVar ? varAt(h.vars, portVar) : undefined;
  return typeof v === 'number' && Number.isInteger(v) ? v : port;
}

/** The hosts of a group; a group that is not in the inventory is an input error (a typo would silently drop a job). */
function groupHosts(hosts: Hosts, group: string, variable: string): HostView[] {
  try {
    return hosts(group);
  } catch (e) {
    throw new UserError(`${variable}: "${group}" is not a group or host of the inventory`, {
      hint: `set ${variable} to a group of the inventory, or turn that job off (false)`,
      cause: e,
    });
  }
}

export function exporterJobs(exporters: Record<string, Exporter>, hosts: Hosts): Job[] {
  return Object.entries(exporters).map(([name, e]) => ({
    name,
    path: e.path,
    targets: groupHosts(hosts, e.group, `prometheus_exporters.${name}.group`).map((h) => ({
      endpoint: endpoint(privateAddress(h), portOf(h, e.port, e.port_var)),
      labels: { instance: h.name },
    })),
  }));
}

/**
 * Each Sentinel through the exporter of a Redis host (its /scrape?target= endpoint): its own
 * when the Sentinel runs on a Redis host, else the first Redis host's. Sentinel speaks TLS
 * when its host's redis_tls.enabled says so.
 */
export function sentinelJob(v: MonitoringVars, hosts: Hosts): Job | undefined {
  const s = v.prometheus_sentinels;
  if (s === false) return undefined;
  const via = v.prometheus_exporters[s.via];
  if (!via) throw new UserError(`prometheus_sentinels.via: "${s.via}" is not an exporter job`, { hint: `one of: ${Object.keys(v.prometheus_exporters).join(', ')}; or prometheus_sentinels: false` });
  const sentinels = groupHosts(hosts, s.group, 'prometheus_sentinels.group');
  const probers = groupHosts(hosts, via.group, `prometheus_exporters.${s.via}.group`);
  if (sentinels.length === 0) return undefined;
  if (probers.length === 0) throw new UserError(`prometheus_sentinels: the Sentinels of "${s.group}" need a host of "${via.group}" whose exporter probes them`, { hint: 'or set prometheus_sentinels: false' });
  return {
    name: 'sentinel',
    path: '/scrape',
    targets: sentinels.map((h) => {
      const prober = probers.find((p) => p.name === h.name) ?? probers[0];
      const tls = (varAt(h.vars, 'redis_tls.enabled') ?? false) === true;
      return {
        endpoint: endpoint(privateAddress(prober), portOf(prober, via.port, via.port_var)),
        labels: { instance: h.name, __param_target: `${tls ? 'rediss' : 'redis'}://${endpoint(privateAddress(h), portOf(h, s.port, s.port_var))}` },
      };
    }),
  };
}

export interface Vip {
  address: string;
  /** The load balancers' certificate comes from the internal CA (haproxy_tls.source pki). */
  internalCa: boolean;
}

/** The distinct `vip` values of the group's hosts. */
export function vipsOf(group: string, hosts: Hosts): Vip[] {
  const out = new Map<string, Vip>();
  for (const h of groupHosts(hosts, group, 'blackbox_vip_group')) {
    const vip = h.vars.vip;
    if (typeof vip !== 'string' || vip === '' || out.has(vip)) continue;
    const source = varAt(h.vars, 'haproxy_tls.source');
    out.set(vip, { address: vip, internalCa: source === undefined || source === 'pki' });
  }
  return [...out.values()];
}

/** The public endpoint from outside the load balancers: is the VIP on a node (ICMP), does HTTPS answer. */
export function probeJobs(vips: Vip[], path: string, blackbox: string): Job[] {
  if (vips.length === 0) return [];
  const url = (a: string) => `https://${a.includes(':') ? `[${a}]` : a}${path}`;
  return [
    {
      name: 'blackbox_icmp',
      path: '/probe',
      targets: vips.map((v) => ({ endpoint: blackbox, labels: { instance: v.address, vip: v.address, __param_target: v.address, __param_module: 'icmp' } })),
    },
    {
      name: 'blackbox_https',
      path: '/probe',
      targets: vips.map((v) => ({
        endpoint: blackbox,
        labels: { instance: url(v.address), vip: v.address, __param_target: url(v.address), __param_module: v.internalCa ? 'https_internal_ca' : 'https' },
      })),
    },
  ];
}

/** Prometheus and Alertmanager of every monitoring host scrape each other. */
export function selfJobs(monitoring: HostView[], v: MonitoringVars): Job[] {
  const on = (port: number) => monitoring.map((h) => ({ endpoint: endpoint(privateAddress(h), port), labels: { instance: h.name } }));
  return [
    { name: 'prometheus', path: '/metrics', targets: on(v.prometheus_port) },
    { name: 'alertmanager', path: '/metrics', targets: on(v.alertmanager_port) },
  ];
}
