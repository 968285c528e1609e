/** Writes the run's audit record locally and on every host that changed. */
import type { TransportPool } from '../transport/index.js';
import type { ExecuteResult } from './executor.js';
import type { SessionRequest } from './session.js';

export async function recordAudit(_r: {
  result: ExecuteResult;
  started: number;
  exitCode: number;
  mode: string;
  req: SessionRequest;
  pool: TransportPool;
}): Promise<void> {
  // Wired to src/audit once it lands (issue 6).
}
