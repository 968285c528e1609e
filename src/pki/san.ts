/**
 * Subject alternative names: what a certificate is valid for. Written by people as plain
 * strings ("db1", "10.0.0.5", "db.example.com"); kept as typed, canonical values so that two
 * spellings of one address compare equal and nothing but a name or an address can reach the
 * signing configuration.
 */
import { isIP } from 'node:net';

export interface San {
  type: 'DNS' | 'IP';
  value: string;
}

/** A DNS name (letters, digits, "-", "_"; dotted labels; a leading "*." wildcard). */
const DNS_NAME = /^(\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** "10.0.0.5" → IP, "db1" → DNS, "IP:..." / "DNS:..." explicit; anything else is undefined. */
export function parseSan(text: string): San | undefined {
  const explicit = /^(DNS|IP):(.*)$/i.exec(text.trim());
  const raw = explicit ? explicit[2].trim() : text.trim();
  const kind = explicit?.[1].toUpperCase();
  const bare = raw.replace(/^\[(.*)\]$/, '$1');
  if (kind !== 'DNS' && isIP(bare)) return { type: 'IP', value: canonicalIp(bare) };
  if (kind !== 'IP' && raw.length <= 253 && DNS_NAME.test(raw)) return { type: 'DNS', value: raw.toLowerCase().replace(/\.$/, '') };
  return undefined;
}

export const isValidSan = (text: string): boolean => parseSan(text) !== undefined;

export const formatSan = (s: San): string => `${s.type}:${s.value}`;

/** IPv4 as is; IPv6 compressed and lower-case (what the URL parser prints). */
function canonicalIp(ip: string): string {
  if (isIP(ip) === 4) return ip;
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** Sorted and without duplicates: the order SANs are compared and written in. */
export function sanSet(sans: San[]): San[] {
  const seen = new Map(sans.map((s) => [formatSan(s), s]));
  return [...seen.keys()].sort().map((k) => seen.get(k)!);
}

/** node:crypto's X509Certificate.subjectAltName ("DNS:db1, IP Address:10.0.0.5") → SANs. */
export function sansOfCertificate(subjectAltName: string | undefined): San[] {
  if (!subjectAltName) return [];
  const out: San[] = [];
  for (const part of subjectAltName.split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.*)$/.exec(part.trim());
    const san = m ? parseSan(`${m[1] === 'DNS' ? 'DNS' : 'IP'}:${m[2]}`) : undefined;
    // Other kinds (email, URI) are kept as written so a difference still shows.
    out.push(san ?? { type: 'DNS', value: `?${part.trim()}` });
  }
  return sanSet(out);
}

/** "+IP:10.0.0.5 -DNS:old" between what a certificate has and what is wanted; "" when equal. */
export function sanDifference(have: San[], want: San[]): string {
  const h = new Set(have.map(formatSan));
  const w = new Set(want.map(formatSan));
  const added = [...w].filter((s) => !h.has(s)).map((s) => `+${s}`);
  const removed = [...h].filter((s) => !w.has(s)).map((s) => `-${s}`);
  return [...added, ...removed].join(' ');
}
