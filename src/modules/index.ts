/** Every module, by namespace (`apt.packages(...)` in roles) and by name (YAML tasks). */
import type { Module } from './types.js';
import * as apt from './apt.js';
import * as files from './files.js';
import * as systemd from './systemd.js';
import * as users from './users.js';
import * as sysctl from './sysctl.js';
import * as command from './command.js';
import * as meta from './meta.js';
import * as tls from './tls.js';
import * as cluster from './cluster.js';
import * as haproxy from './haproxy.js';
import * as redis from './redis.js';
import * as confirm from './confirm.js';
import * as postgres from './postgres.js';
import * as app from './app.js';
import * as aide from './aide.js';
import * as wireguard from './wireguard.js';

export { apt, files, systemd, users, sysctl, command, meta, tls, cluster, haproxy, redis, confirm, postgres, app, aide, wireguard };

const factories = [
  apt.packages, apt.repository, apt.update,
  files.file, files.directory, files.copy, files.template, files.line, files.block, files.absent,
  systemd.service, systemd.unit,
  users.user, users.group, users.authorizedKey,
  sysctl.param,
  command.run,
  meta.skip, meta.warn, meta.flushHandlers,
  tls.certificate, tls.caTrust,
  cluster.primary,
  haproxy.server,
  redis.config, redis.acl, redis.replication, redis.sentinel,
  confirm.files,
  postgres.topology, postgres.config, postgres.hba, postgres.role, postgres.database, postgres.grant, postgres.slot, postgres.sql,
  app.release,
  aide.update,
  wireguard.key,
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const moduleRegistry: Map<string, Module<any>> = new Map(factories.map((f) => [f.module.name, f.module]));
