import type { FactSource } from './fact.js';

/** The container technology ("docker", "lxc", ...) or "none". */
export const container: FactSource = {
  name: 'container',
  command: 'systemd-detect-virt --container 2>/dev/null || echo none',
  parse(stdout) {
    // On "none" systemd-detect-virt prints "none" itself and exits 1, then we echo another.
    const word = stdout.trim().split('\n')[0]?.trim();
    return { container: word || 'none' };
  },
};
