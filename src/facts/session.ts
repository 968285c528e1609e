import type { FactSource } from './fact.js';

/** Effective uid of the session shell (0 once become worked). */
export const uid: FactSource = {
  name: 'uid',
  // The effective uid from /proc/self/status with the `read` builtin (no fork), else `id -u`.
  command: 'u=; while read -r k r e _; do [ "$k" = Uid: ] && { u=$e; break; }; done </proc/self/status; echo "${u:-$(id -u)}"',
  parse(stdout) {
    const n = Number.parseInt(stdout.trim(), 10);
    return Number.isFinite(n) ? { uid: n } : {};
  },
};

/** systemd when it is PID 1 and running (the directory exists only then). */
export const init: FactSource = {
  name: 'init',
  command: '[ -d /run/systemd/system ] && echo systemd || echo other',
  parse(stdout) {
    return { initSystem: stdout.trim() === 'systemd' ? 'systemd' : 'other' };
  },
};
