/**
 * postgres.topology, postgres.config, postgres.hba: the server itself (see postgres.ts).
 */
import { z } from 'zod';
import { sh } from '../shell/quote.js';
import { fileCheck, readState, renderTemplate, type WriteData } from './whole-file.js';
import { applyFile } from './file-plan.js';
import { sha256 } from './file-state.js';
import { commandFailed, runChecked, splitSections } from './run-checked.js';
import { changedSettings, lit, parseConf, parseJson, portSchema, psql, psqlChecked, readForCheck } from './postgres-sql.js';
import { defineModule, hasChanges, nonEmpty, unchanged, type Change, type Check, type HostContext } from './types.js';

const unitName = z.string().regex(/^[A-Za-z0-9:_.@-]+$/, 'a systemd unit name');
const absPath = z.string().regex(/^\/[^\0]+$/, 'an absolute path');

// ---------------------------------------------------------------- postgres.topology

const topologyParams = z
  .object({
    /** What the inventory says this host is. */
    expect: z.enum(['primary', 'standby']),
    dataDir: absPath,
    service: unitName,
    port: portSchema,
    /** What to do about a mismatch, for the error (the role names its groups and playbooks). */
    hint: z.string().default(''),
    /**
     * A promoted standby expected to be a standby is moved aside (never deleted) so that it can
     * be cloned again from the primary. The explicit, destructive path; off by default.
     */
    rebuild: z.boolean().default(false),
  })
  .strict();
export type TopologyParams = z.infer<typeof topologyParams>;

export interface ServerState {
  cluster: boolean;
  running: boolean;
  /** pg_is_in_recovery() when running, else standby.signal / recovery.signal present. */
  standby?: boolean;
  timeline?: string;
  /** The note infra-pg-dr's fence left beside the data directory (<dataDir>.fenced) after a failover. */
  fenced?: string;
}

const MARK = '@@infra-pg@@';

export function parseServerState(stdout: string): ServerState {
  const s = splitSections(stdout, MARK);
  const cluster = (s.get('cluster') ?? '').trim() === 'yes';
  const live = (s.get('live') ?? '').trim();
  const signal = (s.get('signal') ?? '').trim();
  const running = live === 't' || live.startsWith('t|') || live.startsWith('f|') || live === 'f';
  const [rec, timeline] = live.split('|');
  const fenced = (s.get('fence') ?? '').trim() || undefined;
  if (!cluster) return { cluster, running: false };
  if (running) return { cluster, running, standby: rec === 't', timeline, ...(fenced ? { fenced } : {}) };
  return { cluster, running, standby: signal === 'yes', ...(fenced ? { fenced } : {}) };
}

export function serverStateScript(p: { dataDir: string; service: string; port: number }): string {
  return [
    `echo ${MARK}cluster`,
    sh`[ -f ${`${p.dataDir}/PG_VERSION`} ] && echo yes || echo no`,
    `echo ${MARK}live`,
    sh`if systemctl is-active -q -- ${p.service}; then cd / && runuser -u postgres -- psql -X -A -t -p ${p.port} -d postgres -c 'select pg_is_in_recovery(), timeline_id from pg_control_checkpoint()' 2>/dev/null; fi`,
    `echo ${MARK}signal`,
    sh`if [ -f ${`${p.dataDir}/standby.signal`} ] || [ -f ${`${p.dataDir}/recovery.signal`} ]; then echo yes; else echo no; fi`,
    `echo ${MARK}fence`,
    sh`head -c 500 ${`${p.dataDir}.fenced`} 2>/dev/null`,
    'exit 0',
  ].join('\n');
}

export function describeState(s: ServerState): string {
  if (!s.cluster) return 'no cluster';
  const what = s.standby ? 'a standby (in recovery)' : 'a primary (not in recovery)';
  const how = s.running ? `pg_is_in_recovery() = ${s.standby ? 't' : 'f'}${s.timeline ? `, timeline ${s.timeline}` : ''}` : `not running; ${s.standby ? 'standby.signal present' : 'no standby.signal'}`;
  return `${what}: ${how}`;
}

/** The decision, pure: a mismatch stops the host (or, with rebuild, moves a standby's data aside). */
export function decideTopology(p: TopologyParams, s: ServerState, host: string): Check {
  if (!s.cluster) return unchanged('no cluster yet');
  // A fenced old primary is touched by nothing but the rejoin (it must not come back as a primary).
  if (s.fenced) throw new Error(`${host} is fenced: ${s.fenced}. Nothing was changed on ${host}.${p.hint ? ` ${p.hint}` : ''}`);
  const isStandby = s.standby === true;
  if (isStandby === (p.expect === 'standby')) return unchanged(`${host} is ${describeState(s)}, as the inventory says`);
  if (p.expect === 'standby' && p.rebuild) {
    return { changes: [{ what: 'rebuild as a standby', from: describeState(s), to: `data moved aside to ${p.dataDir}.pre-rebuild-<time>, cloned again from the primary` }] };
  }
  throw new Error(
    `the inventory says ${host} is a ${p.expect}, but PostgreSQL there is ${describeState(s)}. ` +
      `Nothing was changed on ${host}.${p.hint ? ` ${p.hint}` : ''}`,
  );
}

export const topology = defineModule<TopologyParams, z.input<typeof topologyParams>>({
  name: 'postgres.topology',
  params: topologyParams,
  describe: (p) => `${p.expect} expected`,
  async check(host, p) {
    const r = await runChecked(host, serverStateScript(p), 'read the PostgreSQL server state');
    return decideTopology(p, parseServerState(r.stdout), host.name);
  },
  async apply(host, p) {
    // Only reached with rebuild: stop the promoted server, keep its data under another name.
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
    await runChecked(host, sh`systemctl stop -- ${p.service} && mv -- ${p.dataDir} ${`${p.dataDir}.pre-rebuild-${stamp}`}`, 'move the promoted data directory aside');
  },
});

// ---------------------------------------------------------------- postgres.config

const configParams = z
  .object({
    /** The drop-in: /etc/postgresql/<version>/<cluster>/conf.d/<name>.conf */
    dest: absPath.refine((d) => d.endsWith('.conf'), 'a conf.d file ends in .conf'),
    /** Template of the role rendering `name = value` lines. */
    src: z.string().min(1),
    vars: z.record(z.unknown()).optional(),
    /** The cluster's main postgresql.conf (includes conf.d): the validation reads it. */
    mainConfig: absPath,
    /** The server binary: /usr/lib/postgresql/<version>/bin/postgres */
    binary: absPath,
    service: unitName,
    port: portSchema,
  })
  .strict();
export type ConfigParams = z.infer<typeof configParams>;

interface ServerSettings {
  /** Names whose context is "postmaster" (a change needs a restart). */
  postmaster: string[];
  /** Settings changed on disk that wait for a restart. */
  pending: string[];
}

const SETTINGS_SQL = `select json_build_object(
  'postmaster', coalesce((select json_agg(name) from pg_settings where context = 'postmaster'), '[]'),
  'pending', coalesce((select json_agg(name order by name) from pg_settings where pending_restart), '[]'))`;

export interface ConfigData {
  /** The file to write (absent: only a pending restart to do). */
  write?: WriteData;
  restart: boolean;
}

/** The decision, pure: the file diff, then reload or restart from the changed settings' contexts. */
export function decideConfig(write: Check<WriteData>, changed: string[], server: ServerSettings | undefined, service: string): Check<ConfigData> {
  const restartFor = server ? changed.filter((n) => server.postmaster.includes(n)) : [];
  const pending = server?.pending ?? [];
  const changes: Change[] = [...write.changes];
  if (write.changes.length && !server) changes.push({ what: 'takes effect when the server starts', to: changed.join(', ') });
  if (server && (restartFor.length || pending.length)) {
    const names = [...new Set([...restartFor, ...pending])].sort();
    changes.push({ what: `restart ${service}`, from: `needs a restart: ${names.join(', ')}${pending.length ? ' (pending since an earlier run)' : ''}` });
  } else if (server && write.changes.length) {
    changes.push({ what: `reload ${service}`, to: changed.length ? changed.join(', ') : 'no setting changed' });
  }
  if (!nonEmpty(changes)) return unchanged(write.reason ?? 'up to date');
  return { changes, diff: write.diff, data: { write: write.data, restart: restartFor.length > 0 || pending.length > 0 } };
}

export const config = defineModule<ConfigParams, z.input<typeof configParams>, ConfigData>({
  name: 'postgres.config',
  params: configParams,
  describe: (p) => p.dest,
  async check(host, p) {
    const content = Buffer.from(await renderTemplate(host, p.src, p.vars), 'utf8');
    const state = await readState(host, p.dest, 'always');
    const write = fileCheck({ path: p.dest, content, mode: '0644', owner: 'postgres', group: 'postgres' }, state);
    const changed = changedSettings(parseConf(state.content?.toString('utf8') ?? ''), parseConf(content.toString('utf8')));
    const active = (await host.run(sh`systemctl is-active -q -- ${p.service}`)).code === 0;
    const server = active ? await readForCheck(host, SETTINGS_SQL, { port: p.port }, (o) => parseJson<ServerSettings>(o)) : undefined;
    return decideConfig(write, changed, server, p.service);
  },
  async apply(host, p, c) {
    const d = c.data;
    if (d.write) {
      if (d.write.plan.write) await validateConfig(host, p, d.write.want.content);
      await applyFile(host, d.write.want, d.write.state, d.write.plan);
    }
    if ((await host.run(sh`systemctl is-active -q -- ${p.service}`)).code !== 0) return; // starts with it
    const pending = await reloadAndReadPending(host, p.port);
    if (pending.length || d.restart) await runChecked(host, sh`systemctl restart -- ${p.service}`, `restart ${p.service}`);
  },
});

/** `postgres -C` parses the whole configuration with the new drop-in last: any error fails it. */
async function validateConfig(host: HostContext, p: ConfigParams, content: Buffer): Promise<void> {
  const script = [
    'set -e',
    'd=$(mktemp -d /tmp/infra-pgconf.XXXXXX)',
    'trap \'rm -rf "$d"\' EXIT',
    'cat > "$d/candidate.conf"',
    sh`printf "include '%s'\\ninclude '%s'\\n" ${p.mainConfig} "$d/candidate.conf" > "$d/check.conf"`,
    'chown -R postgres "$d"',
    sh`cd / && runuser -u postgres -- ${p.binary} -C data_directory -c config_file="$d/check.conf" >/dev/null`,
  ].join('\n');
  const r = await host.run(script, { stdin: content });
  if (r.code !== 0) throw commandFailed(`postgres -C (the new ${p.dest} was not installed)`, r);
}

/** pg_reload_conf(), waits until the server has re-read its files, returns pending_restart names. */
async function reloadAndReadPending(host: HostContext, port: number): Promise<string[]> {
  const before = (await psqlChecked(host, 'select pg_conf_load_time(); select pg_reload_conf();', { port })).split('\n')[0].trim();
  for (let i = 0; i < 50; i++) {
    const out = await psqlChecked(host, `select pg_conf_load_time() > ${lit(before)}::timestamptz, coalesce(string_agg(name, ','), '') from pg_settings where pending_restart`, { port });
    const [reloaded, pending] = out.trim().split('|');
    if (reloaded === 't') return pending ? pending.split(',') : [];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the server did not reload its configuration within 5 s');
}

// ---------------------------------------------------------------- postgres.hba

const hbaParams = z
  .object({
    dest: absPath,
    src: z.string().min(1),
    vars: z.record(z.unknown()).optional(),
    port: portSchema,
  })
  .strict();
export type HbaParams = z.infer<typeof hbaParams>;

export const hba = defineModule<HbaParams, z.input<typeof hbaParams>, WriteData>({
  name: 'postgres.hba',
  params: hbaParams,
  describe: (p) => p.dest,
  async check(host, p) {
    const content = Buffer.from(await renderTemplate(host, p.src, p.vars), 'utf8');
    const state = await readState(host, p.dest, { unlessSha: sha256(content) });
    const c = fileCheck({ path: p.dest, content, mode: '0640', owner: 'postgres', group: 'postgres' }, state);
    return hasChanges(c) ? { ...c, changes: [...c.changes, { what: 'reload', to: 'after pg_hba_file_rules reports no error' }] } : c;
  },
  /**
   * PostgreSQL 15 checks only the live file (pg_hba_file_rules reads hba_file), and re-reads it
   * only on reload: install, ask, and put the old file back on any error, before the reload.
   */
  async apply(host, p, c) {
    const d = c.data;
    const old = d.state.kind === 'file' ? (d.state.content ?? (await host.get(p.dest))) : null;
    await applyFile(host, d.want, d.state, d.plan);
    const r = await psql(host, 'select coalesce(string_agg(line_number || \': \' || error, E\'\\n\'), \'\') from pg_hba_file_rules where error is not null', { port: p.port });
    const errors = r.ok ? r.stdout.trim() : `cannot ask pg_hba_file_rules: ${r.message}`;
    if (errors) {
      if (old) await host.put(p.dest, old, { mode: d.want.mode, owner: d.want.owner, group: d.want.group });
      else await host.remove(p.dest);
      throw new Error(`${p.dest} rejected by pg_hba_file_rules; the previous file was put back and nothing reloaded:\n${errors}`);
    }
    await psqlChecked(host, 'select pg_reload_conf();', { port: p.port });
  },
});
