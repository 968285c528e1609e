/**
 * The system OpenSSH client, which a few tests use to prove the fixtures independently of our
 * own transport. Without it those tests are reported skipped with this reason, never passed.
 */
import { existsSync } from 'node:fs';

export const SSH = process.env.INFRA_TEST_SSH ?? '/usr/bin/ssh';

/** Why an ssh-client test cannot run here, or undefined when it can. */
export const NO_SSH_CLIENT = existsSync(SSH) ? undefined : `no OpenSSH client at ${SSH} (apt-get install openssh-client)`;
