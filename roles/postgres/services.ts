/** postgres_exporter and the weekly maintenance timer (pure). */
import { files, systemd, type Facts, type Task } from 'infra';
import type { PostgresVars } from './vars.js';
import { timerTasks } from './layout.js';

export function exporterTasks(v: PostgresVars, address: string): Task[] {
  const listen = address.includes(':') ? `[${address}]:${v.postgres_exporter.port}` : `${address}:${v.postgres_exporter.port}`;
  return [
    files.template({
      src: 'postgres-exporter.default.hbs',
      dest: '/etc/default/prometheus-postgres-exporter',
      mode: '0644',
      owner: 'root',
      group: 'root',
      vars: { user: v.postgres_exporter.user, pgPort: v.postgres_port, listen },
      notify: 'restart postgres exporter',
    }),
    // The package starts it at install, without a DSN: it crash-loops into systemd's start limit;
    // systemd.service clears a failed unit before starting it.
    systemd.service({ name: 'prometheus-postgres-exporter', enabled: true, state: 'started' }),
  ];
}

export function maintenanceTasks(v: PostgresVars, facts: Facts): Task[] {
  return [
    files.template({
      src: 'pg-maintenance.sh.hbs',
      dest: '/usr/local/sbin/infra-pg-maintenance',
      mode: '0755',
      owner: 'root',
      group: 'root',
      vars: { port: v.postgres_port, jobs: Math.max(1, Math.min(facts.cpus, 4)) },
    }),
    ...timerTasks('infra-pg-maintenance', 'PostgreSQL weekly VACUUM ANALYZE (role postgres)', 'postgres', '/usr/local/sbin/infra-pg-maintenance', v.postgres_maintenance.schedule),
  ];
}
