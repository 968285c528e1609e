import type { FactSource } from './fact.js';

/**
 * Default IPv4 source address and interface. `ip route get` only consults the routing table:
 * no packet is sent.
 */
export const network: FactSource = {
  name: 'network',
  command: 'ip -4 -o route get 1.1.1.1 2>/dev/null || true',
  parse(stdout) {
    const line = stdout.trim().split('\n')[0] ?? '';
    const src = /\bsrc\s+(\d+\.\d+\.\d+\.\d+)/.exec(line)?.[1];
    const dev = /\bdev\s+(\S+)/.exec(line)?.[1];
    return { ...(src ? { ipv4: src } : {}), ...(dev ? { iface: dev } : {}) };
  },
};
