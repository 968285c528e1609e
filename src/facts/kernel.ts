import type { FactSource } from './fact.js';

/** Kernel release and machine architecture. */
export const kernel: FactSource = {
  name: 'kernel',
  // Release and architecture from /proc with the `read` builtin (string sysctls answer its
  // byte-by-byte reads; kernel.arch where the kernel has it): no process on every run.
  command: 'read -r r </proc/sys/kernel/osrelease && echo "$r" || uname -r; read -r m </proc/sys/kernel/arch 2>/dev/null && echo "$m" || uname -m',
  parse(stdout) {
    const [release = '', arch = ''] = stdout.split('\n').map((l) => l.trim());
    return { kernel: release, arch };
  },
};
