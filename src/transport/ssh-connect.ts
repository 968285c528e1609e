/**
 * One ssh2 Client connection: our own TCP socket (TCP_NODELAY, bounded connect) or a
 * bastion-forwarded stream, host key checked against known_hosts before authentication,
 * keys from the inventory and ssh-agent (no agent forwarding), keepalive on.
 * Every error path ends in HostUnreachable or HostRefused; no ssh2 event can go unhandled.
 */
import { readFile } from 'node:fs/promises';
import { connect as tcpConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectConfig } from 'ssh2';
// The client alone: ssh2's index also loads its server, SFTP and HTTP agents (≈ 9 ms at every start).
import Client from 'ssh2/lib/client.js';
import type { Secret } from '../secrets/secret.js';
import { registerSecretValue } from '../secrets/secret.js';
import {
  checkHostKey,
  fingerprint,
  hostKeyName,
  keyTypeOf,
  knownKeyTypes,
  type KnownHosts,
} from './known-hosts.js';
import { HostRefused, HostUnreachable } from './types.js';

export interface SshEndpoint {
  /** Inventory host name (or the bastion spec) used in messages and errors. */
  label: string;
  address: string;
  port: number;
  user: string;
  key?: string;
  keyPassphrase?: Secret;
}

export interface SshConnectOptions {
  knownHosts: KnownHosts;
  acceptNew: boolean;
  /** Bounds TCP connect, and handshake + auth (ssh2 readyTimeout). */
  timeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  /** Inventory name for the hint: `infra apply -i <env> --accept-new`. */
  env: string;
  /** Forwarded stream from a bastion; absent = direct TCP. */
  sock?: Duplex;
}

const PREFERRED_KEX = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group-exchange-sha256',
  'diffie-hellman-group14-sha256',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
];
const PREFERRED_HOST_KEYS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
];

export async function connectSsh(ep: SshEndpoint, opts: SshConnectOptions): Promise<Client> {
  const entries = await opts.knownHosts.entries();
  const name = hostKeyName(ep.address, ep.port);
  // Offer the key types we already know for this host first, as OpenSSH does.
  const known = knownKeyTypes(entries, name).flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256'] : [t]));
  const hostKeys = [...new Set([...known.filter((t) => PREFERRED_HOST_KEYS.includes(t)), ...PREFERRED_HOST_KEYS])];

  let privateKey: Buffer | undefined;
  if (ep.key) {
    try {
      privateKey = await readFile(ep.key);
    } catch (e) {
      throw new HostRefused(ep.label, `cannot read key ${ep.key}: ${(e as Error).message}`);
    }
  }
  const passphrase = ep.keyPassphrase?.reveal();
  if (passphrase) registerSecretValue(passphrase);
  const agent = process.env.SSH_AUTH_SOCK || undefined;
  if (!privateKey && !agent) {
    throw new HostRefused(ep.label, 'no key to log in with', 'set `key:` in the inventory or start ssh-agent (SSH_AUTH_SOCK)');
  }

  const sock = opts.sock ?? (await openTcp(ep, opts.timeoutMs));
  // A refusal decided in hostVerifier; ssh2 then only says "Host denied".
  let refusal: Error | undefined;
  const client = new Client();

  const config: ConnectConfig = {
    sock: sock as Socket,
    username: ep.user,
    privateKey,
    passphrase,
    agent,
    agentForward: false,
    tryKeyboard: false,
    readyTimeout: opts.timeoutMs,
    keepaliveInterval: opts.keepaliveIntervalMs,
    keepaliveCountMax: opts.keepaliveCountMax,
    algorithms: { kex: PREFERRED_KEX as never, serverHostKey: hostKeys as never },
    hostVerifier: ((key: Buffer, verify: (ok: boolean) => void) => {
      const verdict = checkHostKey(entries, name, key);
      const what = `${keyTypeOf(key)} key ${fingerprint(key)}`;
      if (verdict.status === 'ok') return verify(true);
      if (verdict.status === 'unknown' && opts.acceptNew) {
        opts.knownHosts.add(name, key).then(
          () => verify(true),
          (e: Error) => {
            refusal = new HostRefused(ep.label, `cannot record the host key in ${opts.knownHosts.path}: ${e.message}`);
            verify(false);
          },
        );
        return;
      }
      if (verdict.status === 'unknown') {
        refusal = new HostRefused(
          ep.label,
          `unknown host key for ${name}: ${what}; if it is right, accept it with: infra apply -i ${opts.env} --accept-new`,
          `compare with \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on the host, then run: infra apply -i ${opts.env} --accept-new`,
        );
      } else if (verdict.status === 'revoked') {
        refusal = new HostRefused(ep.label, `host key of ${name} (${what}) is @revoked in ${opts.knownHosts.path}:${verdict.line}`);
      } else {
        refusal = new HostRefused(
          ep.label,
          `HOST KEY CHANGED for ${name}: it now presents ${what}, which differs from the ${verdict.knownType} key in ${opts.knownHosts.path}:${verdict.line}. ` +
            'This may be a man-in-the-middle attack; nothing was sent to the host.',
          `if the host was really reinstalled, remove line ${verdict.line} from ${opts.knownHosts.path} and run with --accept-new`,
        );
      }
      verify(false);
    }) as never,
  };

  if (process.env.INFRA_SSH_DEBUG) config.debug = (m: string) => console.error(`[ssh ${ep.label}] ${m}`);
  return new Promise<Client>((resolve, reject) => {
    let settled = false;
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      reject(refusal ?? classify(ep, e));
      try {
        client.end();
      } catch {
        /* already gone */
      }
      sock.destroy();
    };
    // Permanent handlers: errors after the handshake (ECONNRESET, keepalive timeout, errors
    // during end()) are reported through 'close' to the sessions, never thrown.
    client.on('error', (e) => fail(e));
    sock.on('error', (e) => fail(e));
    client.on('close', () => fail(new Error('connection closed during handshake')));
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      resolve(client);
    });
    try {
      client.connect(config);
    } catch (e) {
      fail(e as Error);
    }
  });
}

function openTcp(ep: SshEndpoint, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: ep.address, port: ep.port });
    sock.setNoDelay(true);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new HostUnreachable(ep.label, `TCP connect to ${ep.address}:${ep.port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      sock.on('error', () => {}); // ssh2 and connectSsh handle errors from here on
      resolve(sock);
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new HostUnreachable(ep.label, `cannot reach ${ep.address}:${ep.port}: ${e.message}`, { cause: e }));
    });
  });
}

function classify(ep: SshEndpoint, e: Error): Error {
  if (e instanceof HostRefused || e instanceof HostUnreachable) return e;
  const level = (e as { level?: string }).level;
  if (level === 'client-authentication' || /authentication methods failed/i.test(e.message)) {
    return new HostRefused(
      ep.label,
      `authentication failed for ${ep.user}@${ep.address}:${ep.port}`,
      'check `user` and `key` in the inventory (or the keys in ssh-agent)',
    );
  }
  if (/timed out/i.test(e.message)) {
    return new HostUnreachable(ep.label, `ssh handshake with ${ep.address}:${ep.port} timed out`, { cause: e });
  }
  if (/passphrase|encrypted|Cannot parse privateKey/i.test(e.message)) {
    return new HostRefused(ep.label, `cannot use key ${ep.key}: ${e.message}`, 'check keyPassphrase in the vault');
  }
  return new HostUnreachable(ep.label, `ssh to ${ep.address}:${ep.port} failed: ${e.message}`, { cause: e });
}
