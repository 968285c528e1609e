/**
 * What a host has pending and how it is upgraded, over apt (Debian 12, Ubuntu 22.04): the
 * commands, and pure parsers of their output.
 *
 * Pending updates come from a simulated upgrade (`apt-get -s upgrade --with-new-pkgs`), which
 * prints for each package `Inst NAME [INSTALLED] (CANDIDATE RELEASES [ARCH])`, RELEASES being
 * apt's "Label:Version/Archive" of each source (`Debian-Security:12/stable-security`,
 * `Ubuntu:22.04/jammy-security`). A package is a security update when one of its sources is a
 * security suite: an archive ending in `-security` or a label naming Security — the origin
 * unattended-upgrades trusts for the same purpose.
 */
import { raw, sh } from '../shell/quote.js';
import { APT_ENV, APT_OPTS, UPDATE_COMMAND } from '../modules/apt.js';
import { parseDpkgQuery } from '../modules/apt-parse.js';
import { splitSections } from '../shell/sections.js';

export interface PendingUpdate {
  name: string;
  /** Installed version; null for a package the upgrade installs new (a new kernel image). */
  from: string | null;
  to: string;
  /** Its sources as apt names them: "Debian-Security:12/stable-security". */
  origins: string[];
  security: boolean;
  /** Its upgrade asks for a reboot (kernel, libc, systemd, dbus). */
  reboot: boolean;
}

export type Selection = 'security' | 'all';

/** Packages whose new version only takes effect after a reboot (what Ubuntu's update-notifier and needrestart watch). */
const REBOOT_PACKAGES = [/^linux-image-/, /^linux-modules-/, /^linux-(generic|virtual|signed|aws|azure|gcp|kvm)/, /^libc6$/, /^systemd$/, /^dbus$/];

export const needsReboot = (name: string): boolean => REBOOT_PACKAGES.some((re) => re.test(name));

/** One source of `Inst` output is a security suite: archive "*-security" or a "*Security" label. */
export function isSecurityOrigin(origin: string): boolean {
  const [label, rest] = origin.includes(':') ? [origin.slice(0, origin.indexOf(':')), origin.slice(origin.indexOf(':') + 1)] : ['', origin];
  const archive = rest.slice(rest.lastIndexOf('/') + 1);
  return /-security$/i.test(archive) || /security$/i.test(label);
}

const INST = /^Inst (\S+)(?: \[([^\]]*)\])? \((\S+) (.*?)(?: \[[^\]]*\])?\)/;

/** `apt-get -s upgrade` output → the packages it would install or upgrade (Conf and Remv lines ignored). */
export function parseSimulation(stdout: string): PendingUpdate[] {
  const out: PendingUpdate[] = [];
  for (const line of stdout.split('\n')) {
    const m = INST.exec(line);
    if (!m) continue;
    const [, name, from, to, releases] = m;
    const origins = releases.split(', ').map((s) => s.trim()).filter(Boolean);
    out.push({ name: name.replace(/:[a-z0-9]+$/, ''), from: from || null, to, origins, security: origins.some(isSecurityOrigin), reboot: needsReboot(name) });
  }
  return out;
}

/** The updates a run installs: security ones, or all. New packages come with their upgrades. */
export function selected(updates: PendingUpdate[], selection: Selection): PendingUpdate[] {
  return selection === 'all' ? updates : updates.filter((u) => u.security);
}

const MARK = '@@infra-patch@@';

/**
 * One round trip: refresh the package lists (the only thing it changes: apt's cache), simulate
 * the upgrade, and read whether a reboot is already pending. Exits 90 when a list could not be
 * refreshed (pending updates read from stale lists would be a lie).
 */
export const SCAN_COMMAND = [
  `t=$(mktemp) || exit 97`,
  `trap 'rm -f "$t"' EXIT`,
  // A source that cannot be reached is only a warning to apt (exit 0, old lists kept): not to us.
  `if ! { ${UPDATE_COMMAND}; } >"$t" 2>&1 || grep -Eq '^(W|E): (Failed to fetch|Some index files failed)' "$t"; then grep -E '^(W|E|Err):' "$t" | tail -5 >&2; exit 90; fi`,
  `echo ${MARK}sim`,
  `LC_ALL=C apt-get -s -o Debug::NoLocking=true upgrade --with-new-pkgs 2>&1 || exit 91`,
  `echo ${MARK}reboot`,
  `if [ -f /var/run/reboot-required ]; then echo required; cat /var/run/reboot-required.pkgs 2>/dev/null; fi`,
  'exit 0',
].join('\n');

export interface Scan {
  updates: PendingUpdate[];
  /** /var/run/reboot-required exists (and the packages that asked, from its .pkgs). */
  rebootPending: string[] | null;
}

export function parseScan(stdout: string): Scan {
  const s = splitSections(stdout, MARK);
  return { updates: parseSimulation(s.get('sim') ?? ''), rebootPending: parseRebootFile(s.get('reboot') ?? '') };
}

function parseRebootFile(text: string): string[] | null {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines[0] !== 'required') return null;
  return [...new Set(lines.slice(1))];
}

/**
 * The upgrade. Security only: exactly the packages found pending from a security suite
 * (`install --only-upgrade`: what is not installed is not added, dependencies still come).
 * All: `upgrade --with-new-pkgs` (a new kernel's package is installed, nothing is removed).
 * Config files the admin changed are kept; needrestart only lists (restarts are ours to decide).
 */
/** `updates`: everything the scan found; the command picks what `selection` installs. */
export function upgradeCommand(selection: Selection, updates: PendingUpdate[]): string {
  const opts = raw(`${APT_OPTS} -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold`);
  const env = raw(`${APT_ENV} NEEDRESTART_MODE=l`);
  if (selection === 'all') return sh`${env} apt-get ${opts} upgrade --with-new-pkgs`;
  return sh`${env} apt-get ${opts} install --only-upgrade ${selected(updates, 'security').filter((u) => u.from !== null).map((u) => u.name)}`;
}

/** After the upgrade: installed versions of the packages, and the reboot-required file. */
export function afterCommand(names: string[]): string {
  return [
    `echo ${MARK}dpkg`,
    sh`dpkg-query -W -f='\${Package}\\t\${Version}\\t\${db:Status-Abbrev}\\n' ${names} 2>/dev/null`,
    `echo ${MARK}reboot`,
    `if [ -f /var/run/reboot-required ]; then echo required; cat /var/run/reboot-required.pkgs 2>/dev/null; fi`,
    'exit 0',
  ].join('\n');
}

export function parseAfter(stdout: string): { installed: Map<string, string>; rebootPending: string[] | null } {
  const s = splitSections(stdout, MARK);
  return { installed: parseDpkgQuery(s.get('dpkg') ?? ''), rebootPending: parseRebootFile(s.get('reboot') ?? '') };
}

/** Never restarted for an upgrade: restarting them breaks the system bus or the session we speak through. */
const NEVER_RESTART = new Set(['dbus.service', 'dbus-broker.service', 'systemd-logind.service']);

/** The running services the packages ship (unit files under /lib/systemd/system), one per line. */
export function runningUnitsCommand(names: string[]): string {
  return [
    sh`for p in ${names}; do dpkg -L "$p" 2>/dev/null; done | grep -E '^/(usr/)?lib/systemd/system/[^/@]+\\.service$' | sed 's|.*/||' | sort -u |`,
    `while read -r u; do systemctl is-active -q "$u" && [ "$(systemctl show -p RefuseManualStop --value "$u")" != yes ] && echo "$u"; done; exit 0`,
  ].join(' ');
}

export function parseUnits(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((u) => /^[A-Za-z0-9@_.:-]+\.service$/.test(u) && !NEVER_RESTART.has(u));
}

/** Units in the failed state, one per line (a health check compares before and after). */
export const FAILED_UNITS_COMMAND = `systemctl list-units --state=failed --plain --no-legend --no-pager 2>/dev/null | awk '{print $1}'`;

export function parseFailedUnits(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .sort();
}
