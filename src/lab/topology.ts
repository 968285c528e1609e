/**
 * The lab's hosts, read from the lab inventory's hosts.yaml (the one source of truth):
 * each host's container address, the bastion's published port, and the login key path.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { UserError } from '../errors.js';

export interface LabHost {
  name: string;
  /** Its address on the lab network. */
  ip: string;
  /** The address and port the inventory connects to (127.0.0.1:2222 for the bastion). */
  address: string;
  port: number;
  /** Host port on 127.0.0.1 published to the container's sshd (the bastion only). */
  publishedPort?: number;
}

export interface LabTopology {
  hosts: LabHost[];
  /** Absolute path of the login key (groups.all.key, relative to the inventory dir). */
  keyPath: string;
}

const LOOPBACK = /^(127\.|localhost$|::1$)/;

export async function readTopology(inventoryDir: string): Promise<LabTopology> {
  const file = join(inventoryDir, 'hosts.yaml');
  const doc = parse(await readFile(file, 'utf8')) as {
    hosts?: Record<string, { address?: string; port?: number; vars?: { private_address?: string } } | null>;
    groups?: { all?: { key?: string } };
  };
  const bad = (message: string, hint: string): UserError => new UserError(message, { pos: { file }, hint });
  const key = doc?.groups?.all?.key;
  if (!key) throw bad('the lab inventory has no groups.all.key', 'set it to the key `infra lab up` creates, e.g. ../../.lab/id_ed25519');
  const hosts: LabHost[] = [];
  for (const [name, h] of Object.entries(doc.hosts ?? {})) {
    const address = h?.address;
    if (!address) throw bad(`lab host ${name} has no address`, 'every lab host needs its address on the lab network');
    const port = h.port ?? 22;
    if (LOOPBACK.test(address)) {
      const ip = h.vars?.private_address;
      if (!ip) throw bad(`lab host ${name} is reached on ${address} but has no vars.private_address`, 'give it its address on the lab network');
      hosts.push({ name, ip, address, port, publishedPort: port });
    } else {
      hosts.push({ name, ip: address, address, port });
    }
  }
  if (hosts.length === 0) throw bad('the lab inventory has no hosts', 'list the lab hosts under hosts:');
  return { hosts, keyPath: isAbsolute(key) ? key : resolve(inventoryDir, key) };
}
