/**
 * The library surface for role authors: `import { defineRole, z, apt, files } from 'infra'`.
 * Roles are TypeScript loaded at run time (tsx): no build step in a user's repository.
 */
export { z } from 'zod';
export { defineRole } from './playbook/role.js';
export type { RoleContext, RoleInputContext } from './playbook/role.js';
export { apt, files, systemd, users, sysctl, command, meta, tls, cluster, haproxy, redis, confirm, postgres, app, aide, wireguard, restic } from './modules/index.js';
export { defineModule, unchanged, makeTask } from './modules/types.js';
export type { Module, Check, Changes, NoChange, Change, Diff, HostContext, HostView, Task, TaskOptions } from './modules/types.js';
export type { Facts } from './facts/types.js';
export { Secret } from './secrets/secret.js';
export { quote, sh } from './shell/quote.js';
export { UserError, didYouMean } from './errors.js';
export { CA_CERT_FILE } from './pki/ca.js';
export type { NftRule } from './docs/firewall.js';
export { members, privateAddress, type Member } from './cluster/members.js';
export { observeMembers, livePrimary, summarize, SplitBrain, type RoleProbe, type MemberState, type LiveRole } from './cluster/live.js';
export { vaultSecret } from './cluster/secrets.js';
