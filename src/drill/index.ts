/** The drills `infra drill NAME` knows. */
import { restoreDrill } from './restore.js';
import { redisFailoverDrill } from './redis-failover.js';
import { postgresFailoverDrill } from './postgres-failover.js';
import type { Drill } from './types.js';

export const DRILLS: readonly Drill[] = [postgresFailoverDrill, redisFailoverDrill, restoreDrill];

export function drillNamed(name: string): Drill | undefined {
  return DRILLS.find((d) => d.name === name);
}
