/** Where things live on a host, and the oneshot-service-plus-timer shape every schedule uses. */
import { systemd, type Task } from 'infra';
import type { PostgresVars } from './vars.js';

/** A cluster's paths (Debian's postgresql-common layout; PGDG packages use the same). */
export function pathsOf(v: PostgresVars) {
  const id = `${v.postgres_version}/${v.postgres_cluster}`;
  return {
    conf: `/etc/postgresql/${id}`,
    data: `/var/lib/postgresql/${id}`,
    bin: `/usr/lib/postgresql/${v.postgres_version}/bin`,
    service: `postgresql@${v.postgres_version}-${v.postgres_cluster}`,
  };
}
export type Paths = ReturnType<typeof pathsOf>;

/** A oneshot service and its timer, enabled. */
export function timerTasks(name: string, description: string, user: string, exec: string, schedule: string): Task[] {
  return [
    systemd.unit({ name: `${name}.service`, src: 'oneshot.service.hbs', vars: { description, user, exec } }),
    systemd.unit({ name: `${name}.timer`, src: 'oneshot.timer.hbs', vars: { description, schedule } }),
    systemd.service({ name: `${name}.timer`, enabled: true, state: 'started' }),
  ];
}
