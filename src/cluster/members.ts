/**
 * The hosts of a group as a config file lists them: HAProxy backends, Redis and Sentinel
 * peers, Prometheus targets, pg_hba entries. Addresses are the ones the other hosts use
 * (`private_address` when set, else `address`), in inventory order, so that adding a host to
 * the group and re-applying is all it takes for it to join, and the rendered file does not
 * change from one run to the next.
 */
import type { HostView } from '../modules/types.js';

/** The address other hosts reach this one at: its `private_address` var, else its inventory address. */
export function privateAddress(h: Pick<HostView, 'address' | 'vars'>): string {
  const p = h.vars.private_address;
  return typeof p === 'string' && p !== '' ? p : h.address;
}

export interface Member {
  name: string;
  /** privateAddress() */
  address: string;
  port?: number;
  /** "10.0.0.5:6379", "[fd00::5]:6379", or the address alone without a port. */
  endpoint: string;
}

/**
 * Every host matching `pattern` (a group, or any host pattern), in inventory order. For
 * templates: `{{#each vars.backends}}server {{name}} {{endpoint}} check{{/each}}`.
 */
export function members(hosts: (pattern: string) => HostView[], pattern: string, opts: { port?: number } = {}): Member[] {
  return hosts(pattern).map((h) => {
    const address = privateAddress(h);
    const host = address.includes(':') ? `[${address}]` : address;
    return { name: h.name, address, ...(opts.port !== undefined ? { port: opts.port } : {}), endpoint: opts.port !== undefined ? `${host}:${opts.port}` : address };
  });
}
