/**
 * Resolves the inventory's firewall openings into nftables rules (pure): groups and host
 * names become the addresses other hosts see (`private_address`, else `address`).
 */
import { privateAddress, type HostView, type NftRule } from 'infra';


/** IP protocols opened as a whole (they have no ports), by number: minimal systems have no /etc/protocols. */
export const PORTLESS_PROTOCOLS = { vrrp: 112 } as const;
export type PortlessProtocol = keyof typeof PORTLESS_PROTOCOLS;

export interface AllowRule {
  /** A port or "N-M" range for tcp/udp; none for a portless protocol. */
  port?: number | string;
  proto?: 'tcp' | 'udp' | PortlessProtocol;
  /** Group names, host names, IPs/CIDRs, or "any". */
  from: string[];
  comment?: string;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/;
const IPV6 = /^[0-9a-fA-F:]+:[0-9a-fA-F:]*(\/\d{1,3})?$/;

/** The nftables match and the default comment of one opening. */
function matchOf(r: AllowRule): { match: string; name: string } {
  const proto = r.proto ?? 'tcp';
  if (proto in PORTLESS_PROTOCOLS) return { match: `meta l4proto ${PORTLESS_PROTOCOLS[proto as PortlessProtocol]}`, name: proto };
  return { match: `${proto} dport ${r.port}`, name: `${proto} ${r.port}` };
}

export function resolveRules(rules: AllowRule[], hosts: (pattern: string) => HostView[]): NftRule[] {
  const out = new Map<string, NftRule>();
  for (const r of rules) {
    const { match, name } = matchOf(r);
    const rule = out.get(match) ?? { comment: r.comment ?? name, match, sources4: [], sources6: [], any: false };
    for (const src of r.from) {
      if (src === 'any') rule.any = true;
      else if (IPV4.test(src)) rule.sources4.push(src);
      else if (IPV6.test(src)) rule.sources6.push(src);
      else {
        for (const h of hosts(src)) {
          const a = privateAddress(h);
          (a.includes(':') ? rule.sources6 : rule.sources4).push(a);
        }
      }
    }
    rule.sources4 = [...new Set(rule.sources4)].sort();
    rule.sources6 = [...new Set(rule.sources6)].sort();
    if (r.comment && !rule.comment.includes(r.comment)) rule.comment += `, ${r.comment}`;
    out.set(match, rule);
  }
  // A rule whose sources resolved to nothing opens nothing (never "everything").
  return [...out.values()].filter((r) => r.any || r.sources4.length || r.sources6.length);
}
