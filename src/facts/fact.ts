import type { Facts } from './types.js';

/** One fact source: a shell command (POSIX sh, read-only) and a parser of its stdout. */
export interface FactSource {
  name: string;
  command: string;
  parse(stdout: string): Partial<Facts>;
}
