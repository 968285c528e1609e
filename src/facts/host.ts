import type { FactSource } from './fact.js';

/** Short hostname and FQDN (falls back to the hostname when there is no domain). */
export const host: FactSource = {
  name: 'host',
  // The name from /proc (as uname -n: same UTS namespace) with the `read` builtin.
  command: 'read -r n </proc/sys/kernel/hostname || n=$(uname -n); echo "$n"; hostname -f 2>/dev/null || echo "$n"',
  parse(stdout) {
    const [hostname = '', fqdn = ''] = stdout.split('\n').map((l) => l.trim());
    const short = hostname.split('.')[0];
    return { hostname: short, fqdn: fqdn || hostname };
  },
};
