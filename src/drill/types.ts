/** A drill: what it needs from the inventory, and the exercise itself over the hosts' sessions. */
import type { Inventory } from '../inventory/types.js';
import type { PutOptions, RunOptions, RunResult } from '../transport/types.js';
import type { Measured } from './objectives.js';

export interface DrillContext {
  inventory: Inventory;
  /** The drill's hosts as hosts() chose them, the subject first. */
  hosts: string[];
  /** Unique per drill run: names the markers, units and files it leaves behind for a moment. */
  runId: string;
  /** A command on one of the drill's hosts (connected and locked), as root. */
  run(host: string, cmd: string, opts?: RunOptions): Promise<RunResult>;
  /** A file on one of the drill's hosts (written atomically; a secret's file 0600). */
  put(host: string, path: string, bytes: string, opts?: PutOptions): Promise<void>;
  /** A step for people and for the audit trail: `acted` = it changed something on the host. */
  step(host: string, what: string, acted: boolean): void;
}

export interface Drill {
  name: string;
  describe: string;
  /** The hosts it acts on, the subject first (from the inventory and --limit); an input error when they do not fit. */
  hosts(inventory: Inventory, limit: string[]): string[];
  run(ctx: DrillContext): Promise<Measured>;
}
