export * from './types.js';
export { TransportPool, type TransportOptions } from './pool.js';
export { LocalTransport } from './local.js';
export { SshTransport } from './ssh.js';
export { KnownHosts, fingerprint, hostKeyName, parseKnownHosts, checkHostKey } from './known-hosts.js';
