/**
 * Resolves the inventory's firewall openings into nftables rules (pure): groups and host
 * names become the addresses other hosts see (`private_address`, else `address`).
 */
import { privateAddress, type HostView } from 'infra';

export interface AllowRule {
  port: number | string;
  proto?: 'tcp' | 'udp';
  /** Group names, host names, IPs/CIDRs, or "any". */
  from: string[];
  comment?: string;
}

export interface NftRule {
  comment: string;
  port: string;
  proto: 'tcp' | 'udp';
  sources4: string[];
  sources6: string[];
  any: boolean;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/;
const IPV6 = /^[0-9a-fA-F:]+:[0-9a-fA-F:]*(\/\d{1,3})?$/;

export function resolveRules(rules: AllowRule[], hosts: (pattern: string) => HostView[]): NftRule[] {
  const out = new Map<string, NftRule>();
  for (const r of rules) {
    const proto = r.proto ?? 'tcp';
    const port = String(r.port);
    const key = `${proto}/${port}`;
    const rule = out.get(key) ?? { comment: r.comment ?? `${proto} ${port}`, port, proto, sources4: [], sources6: [], any: false };
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
    out.set(key, rule);
  }
  // A rule whose sources resolved to nothing opens nothing (never "everything").
  return [...out.values()].filter((r) => r.any || r.sources4.length || r.sources6.length);
}
