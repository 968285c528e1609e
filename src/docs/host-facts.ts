/**
 * `infra docs --facts`: what the hosts actually run, for the inventory page. A read-only run:
 * facts and installed versions of the key packages, through the usual connections (bastion,
 * known_hosts), with no lock and no audit record: nothing changes.
 */
import { readFromHosts, type AdhocRequest } from '../engine/adhoc.js';
import { gatherFacts } from '../facts/index.js';
import { parseDpkgQuery } from '../modules/apt-parse.js';
import { quote } from '../shell/quote.js';

/** The packages whose versions matter to an operator (security fixes, upgrades), when installed. */
export const KEY_PACKAGES = [
  'openssh-server',
  'nftables',
  'fail2ban',
  'haproxy',
  'keepalived',
  'nginx',
  'nodejs',
  'docker.io',
  'postgresql-15',
  'pgbouncer',
  'pgbackrest',
  'redis-server',
  'redis-sentinel',
  'prometheus',
  'prometheus-alertmanager',
  'prometheus-node-exporter',
];

export interface HostReport {
  os: string;
  kernel: string;
  /** Installed key packages → version. */
  packages: Record<string, string>;
}

export type HostReports = Record<string, HostReport | { error: string }>;

export function dpkgVersionsCommand(names: readonly string[]): string {
  // dpkg-query exits 1 when a name is not installed: the listed ones are what counts.
  return `dpkg-query -W -f='\${Package}\\t\${Version}\\t\${db:Status-Abbrev}\\n' ${names.map(quote).join(' ')} 2>/dev/null; exit 0`;
}

export function hostReports(req: AdhocRequest): Promise<HostReports> {
  return readFromHosts(req, async (t) => {
    const facts = await gatherFacts((cmd) => t.run(cmd));
    const r = await t.run(dpkgVersionsCommand(KEY_PACKAGES));
    const installed = parseDpkgQuery(r.stdout);
    return { os: facts.os.prettyName, kernel: facts.kernel, packages: Object.fromEntries([...installed].sort(([a], [b]) => (a < b ? -1 : 1))) };
  });
}
