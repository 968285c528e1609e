/** The drills `infra drill NAME` knows. */
import { restoreDrill } from './restore.js';
import type { Drill } from './types.js';

export const DRILLS: readonly Drill[] = [restoreDrill];

export function drillNamed(name: string): Drill | undefined {
  return DRILLS.find((d) => d.name === name);
}
