/**
 * What the executor runs: plays already resolved and validated (prepare.ts), so that every
 * input error surfaces before the first connection.
 */
import type { Task, HostView } from '../modules/types.js';
import type { Facts } from '../facts/types.js';

/** A task bound to its role (for templates and files) and its display name. */
export interface BoundTask {
  task: Task;
  /** Role directory for templates/files; undefined for playbook tasks. */
  roleDir?: string;
  roleName?: string;
  /** Variables templates of this task see. */
  vars: Record<string, unknown>;
}

export interface HostPlay {
  /** Builds the host's task list once facts are known (role tasks need facts). */
  tasks(facts: Facts, hosts: (pattern: string) => HostView[]): BoundTask[];
  handlers: Map<string, BoundTask>;
}

export interface PreparedPlay {
  index: number;
  name: string;
  hosts: string[];
  batches: string[][];
  maxFailPercentage?: number;
  anyErrorsFatal: boolean;
  byHost: Map<string, HostPlay>;
}

/** One task's record in a plan file. */
export interface PlannedTask {
  task: string;
  module: string;
  changes: { what: string; from?: string; to?: string }[];
  fingerprint: string;
}

export interface PlanFile {
  /** 2: keyed fingerprints (version 1 plans hashed redacted data and are refused). */
  version: 2;
  createdAt: string;
  runId: string;
  /** HMAC key of the fingerprints (hex), made for this plan only. */
  fingerprintKey: string;
  /** The arguments that reproduce the run. */
  args: {
    /** Absolute directory of the inventory (the plan works from any directory). */
    inventory: string;
    /** The inventory as it was named (`lab`), for output. */
    inventoryName: string;
    playbook: string;
    limit?: string;
    tags?: string[];
    extraVars: string[];
    role?: string;
  };
  /** host → play index → tasks. */
  hosts: Record<string, Record<string, PlannedTask[]>>;
}
