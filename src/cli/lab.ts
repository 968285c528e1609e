/** `infra lab up | down | status`: the lab inventory's hosts as containers on this machine. */
import type { Command } from 'commander';
import { labDown, labStatus, labUp, type LabHostStatus } from '../lab/lab.js';
import { defaultLabOptions } from '../lab/options.js';

export function register(program: Command): void {
  const lab = program
    .command('lab')
    .description('run the lab topology (inventories/lab) as Debian 12 containers on this machine');

  lab
    .command('up')
    .description('start the lab hosts (idempotent), install the login key, write inventories/lab/known_hosts')
    .action(async () => {
      const t0 = Date.now();
      const hosts = await labUp(defaultLabOptions((line) => console.error(line)));
      console.log(formatStatus(hosts));
      console.error(`lab: up in ${((Date.now() - t0) / 1000).toFixed(1)} s; next: infra apply -i lab playbooks/site.yaml`);
    });

  lab
    .command('down')
    .description('remove every lab container and the lab network')
    .action(async () => {
      const removed = await labDown(defaultLabOptions());
      console.log(removed.length ? `lab: removed ${removed.join(', ')}` : 'lab: nothing to remove');
    });

  lab
    .command('status')
    .description('print each lab host with its address and container state; exit 1 unless every host is running')
    .action(async () => {
      const hosts = await labStatus(defaultLabOptions());
      console.log(formatStatus(hosts));
      const down = notRunning(hosts);
      // Like `systemctl is-active`: scripts can wait on it (`until infra lab status; do ...`).
      if (down.length) {
        console.error(`lab: not up: ${down.map((h) => `${h.name} ${h.state}`).join(', ')}; start it with \`infra lab up\``);
        process.exitCode = 1;
      }
    });
}

/** The hosts that keep the lab from being up (missing, exited, ...). */
export function notRunning(hosts: LabHostStatus[]): LabHostStatus[] {
  return hosts.filter((h) => h.state !== 'running');
}

export function formatStatus(hosts: LabHostStatus[]): string {
  const rows = [['NAME', 'ADDRESS', 'STATE'], ...hosts.map((h) => [h.name, h.address, h.state])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]) : c)).join('  ')).join('\n');
}
