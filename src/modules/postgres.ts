/**
 * postgres.*: a PostgreSQL cluster managed over the session with psql as the postgres OS user.
 *   postgres.topology  the server is what the inventory says (primary / standby), or the host stops
 *   postgres.config    a conf.d drop-in: validated with `postgres -C`, then reload, or restart
 *                      only when a changed setting's context is "postmaster"
 *   postgres.hba       pg_hba.conf: installed, checked with pg_hba_file_rules, restored on error
 *   postgres.role      a role (user) with attributes, memberships and a SCRAM password
 *   postgres.database  a database with owner, encoding and locale
 *   postgres.grant     exact privileges of a role on a database, schema, or its tables/sequences
 *   postgres.slot      a physical replication slot
 *   postgres.sql       SQL guarded by a query (objects no other module covers)
 * Passwords are compared by recomputing the stored SCRAM verifier; they are set as verifiers.
 */
export * from './postgres-server.js';
export * from './postgres-objects.js';
/** Role and database names as the modules accept them (roles validate their variables with it). */
export { pgName } from './postgres-sql.js';
