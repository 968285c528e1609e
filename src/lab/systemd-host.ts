/**
 * What every test and lab host has in common: the test image, the `docker run` options
 * systemd needs as PID 1 (ARCHITECTURE "Test substrate"), and the first-boot setup
 * (login key for `admin`, optional sshd settings, host key read back).
 */
export const TEST_IMAGE = process.env.INFRA_TEST_IMAGE ?? 'infra-test-debian12:latest';
export const SYSTEMD_COMMAND = ['/lib/systemd/systemd'];

/** `docker run` flags for a systemd container (`--privileged` fails on these machines). */
export const SYSTEMD_RUN_FLAGS = [
  '--cap-add', 'SYS_ADMIN',
  '--cap-add', 'NET_ADMIN',
  '--security-opt', 'seccomp=unconfined',
  '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw',
  '--cgroupns=host',
  '--tmpfs', '/run',
  '--tmpfs', '/run/lock',
];

/** The bastion's tun device: WireGuard's userspace wireguard-go (role vpn) where the kernel has no module. */
export const TUN_DEVICE_FLAGS = ['--device', '/dev/net/tun'];

/** Succeeds once sshd is up (ssh.service is Type=notify: active means listening). */
export const SSHD_READY_COMMAND = ['systemctl', 'is-active', '--quiet', 'ssh'];

/**
 * Run as root inside a host: `sh -c SETUP_SCRIPT sh <authorized_keys line> <extra sshd config>`.
 * Values arrive as positional parameters, so nothing needs quoting. Prints the ed25519 host key.
 */
export const SETUP_SCRIPT = `set -eu
install -d -m 0700 -o admin -g admin /home/admin/.ssh
printf '%s\\n' "$1" > /home/admin/.ssh/authorized_keys
chown admin:admin /home/admin/.ssh/authorized_keys
chmod 0600 /home/admin/.ssh/authorized_keys
if [ -n "$2" ]; then
  # 00- sorts first: for sshd the first value read wins.
  printf '%s\\n' "$2" > /etc/ssh/sshd_config.d/00-test.conf
  sshd -t
  systemctl restart ssh
fi
cat /etc/ssh/ssh_host_ed25519_key.pub
`;

/** "ssh-ed25519 AAAA... root@x" → "ssh-ed25519 AAAA..." */
export function hostKeyFromPub(pub: string): string {
  const [type, key] = pub.trim().split(/\s+/);
  if (!type || !key) throw new Error(`not an ssh public key: ${JSON.stringify(pub.slice(0, 80))}`);
  return `${type} ${key}`;
}

/** One OpenSSH known_hosts line: `addr key` on port 22, `[addr]:port key` otherwise. */
export function knownHostsLine(address: string, port: number, hostKey: string): string {
  const pattern = port === 22 ? address : `[${address}]:${port}`;
  return `${pattern} ${hostKey}`;
}
