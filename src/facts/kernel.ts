import type { FactSource } from './fact.js';

/** Kernel release and machine architecture. */
export const kernel: FactSource = {
  name: 'kernel',
  command: 'uname -r; uname -m',
  parse(stdout) {
    const [release = '', arch = ''] = stdout.split('\n').map((l) => l.trim());
    return { kernel: release, arch };
  },
};
