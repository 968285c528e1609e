/**
 * The failover's tools on every database member (pure): /usr/local/sbin/infra-pg-dr (fence,
 * promote, rejoin — run by playbooks/dr/postgres-*.yaml and `infra drill postgres-failover`),
 * and the end of their interim settings: once the role runs with the updated inventory, its
 * 50-infra.conf says the same and the DR drop-in goes.
 */
import { files, privateAddress, type HostView, type Task } from 'infra';
import type { PostgresVars } from './vars.js';
import { slotName } from './topology.js';
import { PGPASS } from './tuning.js';
import { TLS } from './tls.js';
import type { Paths } from './layout.js';

export const DR_SCRIPT = '/usr/local/sbin/infra-pg-dr';
export const drDropIn = (p: Paths): string => `${p.conf}/conf.d/60-infra-dr.conf`;

export function drTasks(v: PostgresVars, p: Paths, members: HostView[], self: string, primary: string): Task[] {
  return [
    files.template({
      src: 'infra-pg-dr.sh.hbs',
      dest: DR_SCRIPT,
      mode: '0755',
      owner: 'root',
      group: 'root',
      validate: 'bash -n %s',
      vars: {
        data: p.data,
        bin: p.bin,
        service: p.service,
        port: v.postgres_port,
        self,
        slot: slotName(self),
        replicationUser: v.postgres_replication_user,
        ca: TLS.ca,
        pgpass: PGPASS,
        dropIn: drDropIn(p),
        mainConf: `${p.conf}/postgresql.conf`,
        pgbouncerPort: v.postgres_pgbouncer.enabled ? String(v.postgres_pgbouncer.port) : '',
        syncReplicas: v.postgres_sync_replicas,
        stanza: v.postgres_backup.stanza,
        inventoryPrimary: primary,
        members: [...members].sort((a, b) => a.name.localeCompare(b.name)).map((m) => ({ name: m.name, address: privateAddress(m) })),
      },
    }),
    files.absent({ path: drDropIn(p), notify: 'reload postgresql' }),
  ];
}
