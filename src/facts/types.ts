/**
 * Facts: one shell command + one typed parser per domain, gathered for a host in ONE round
 * trip at connect (see facts/index.ts) and cached for the run.
 */
export interface OsFacts {
  id: string; // "debian" | "ubuntu"
  versionId: string; // "12", "22.04"
  codename: string; // "bookworm", "jammy"
  prettyName: string;
  family: 'debian';
}

export interface Facts {
  hostname: string;
  fqdn: string;
  os: OsFacts;
  kernel: string;
  arch: string; // "x86_64"
  cpus: number;
  memoryMb: number;
  /** systemd-detect-virt --container output, or "none". */
  container: string;
  /** Default IPv4 address and interface, if any. */
  ipv4?: string;
  iface?: string;
  /** Effective uid of the session shell (0 when become worked). */
  uid: number;
  initSystem: 'systemd' | 'other';
}
