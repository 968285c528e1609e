/**
 * Lynis as the outside judge, weekly: `lynis audit system --quick` with a profile that skips
 * only what cannot apply on this host, each with the reason (a container cannot own its
 * kernel, its mounts or its devices), and the hardening index and warning count exported for
 * Prometheus (alert when the index drops or a warning appears).
 */
import { files, systemd, type Facts, type Task } from 'infra';
import type { HardeningVars } from './role.js';
import { settableInContainer } from './system.js';

export interface LynisSkip {
  test: string;
  reason: string;
}

/** What Lynis must not judge on this host, and why (pure: facts + vars). */
export function lynisSkips(v: Pick<HardeningVars, 'lynis_skip_tests'>, facts: Facts, sysctlKeys: string[]): LynisSkip[] {
  const skips: LynisSkip[] = [];
  if (facts.container !== 'none') {
    const c = facts.container;
    const kernelWide = sysctlKeys.filter((k) => !settableInContainer(k));
    skips.push(
      ...kernelWide.map((k) => ({
        test: `KRNL-6000:${k}`,
        reason: `${k} belongs to the host's kernel, not to the container (${c}); the role persists it in /etc/sysctl.d/90-infra-hardening.conf for a VM`,
      })),
      { test: 'KRNL-5788', reason: `a container (${c}) has no kernel image of its own (/vmlinuz)` },
      { test: 'FILE-6310', reason: `partitions belong to the host of the container (${c}): /home, /tmp and /var cannot be separate file systems here` },
      { test: 'FILE-6344', reason: `/proc is mounted by the container runtime (${c}); hidepid cannot be set from inside` },
      { test: 'FILE-6374', reason: `/dev, /dev/shm and the other mounts are made by the container runtime (${c}) with its options` },
      { test: 'MACF-6290', reason: `AppArmor/SELinux belong to the host of the container (${c}), not configurable from inside` },
      { test: 'USB-3000', reason: `a container (${c}) has no USB bus: USBGuard has no devices to authorize` },
      { test: 'ACCT-9622', reason: `process accounting needs CAP_SYS_PACCT, which a container (${c}) does not have: acct is installed but cannot run` },
      { test: 'ACCT-9628', reason: `auditd cannot run in a container (${c}): the audit subsystem is not namespaced` },
    );
  }
  return [...skips, ...v.lynis_skip_tests];
}

export function lynisTasks(v: HardeningVars, facts: Facts, sysctlKeys: string[]): Task[] {
  return [
    files.template({
      src: 'lynis.prf.hbs',
      dest: '/etc/lynis/custom.prf',
      mode: '0644',
      owner: 'root',
      group: 'root',
      vars: { skips: lynisSkips(v, facts, sysctlKeys) },
    }),
    files.template({ src: 'lynis.sh.hbs', dest: '/usr/local/sbin/infra-lynis', mode: '0755', owner: 'root', group: 'root' }),
    ...systemd.scheduledJob({
      name: 'infra-lynis',
      description: 'Lynis security scan, exported for Prometheus (infra hardening)',
      exec: '/usr/local/sbin/infra-lynis',
      schedule: v.lynis_schedule,
      randomDelay: '6h',
    }),
  ];
}
