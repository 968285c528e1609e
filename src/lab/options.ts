/** Where the lab lives and what it is called; tests run a second, smaller lab with their own. */
import { join } from 'node:path';
import { TEST_IMAGE } from './systemd-host.js';
import { INFRA_HOME } from '../home.js';

export interface LabOptions {
  /** hosts.yaml is read from here and known_hosts written here. */
  inventoryDir: string;
  /** Docker network and its subnet (every host's address must be in it). */
  network: string;
  subnet: string;
  /** Container name = namePrefix + inventory host name. */
  namePrefix: string;
  /** On every container and the network; `lab down` removes what carries them. */
  labels: Record<string, string>;
  image: string;
  /** Builds `image` when it is missing. */
  buildScript: string;
  /** Progress lines for people. */
  log: (line: string) => void;
}

/** The lab lives in the repository itself (inventories/lab, test/image). */
export const REPO_ROOT = INFRA_HOME;

export function defaultLabOptions(log: (line: string) => void = () => {}): LabOptions {
  return {
    inventoryDir: join(REPO_ROOT, 'inventories', 'lab'),
    network: 'infra-lab',
    subnet: '172.28.77.0/24',
    namePrefix: 'infra-lab-',
    labels: { 'infra-lab': '1' },
    image: TEST_IMAGE,
    buildScript: join(REPO_ROOT, 'test', 'image', 'build.sh'),
    log,
  };
}
