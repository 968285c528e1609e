/**
 * The repository host (pure): one system user per client, chrooted to its own directory and
 * allowed SFTP only, trusting exactly that client's key. A client that is broken into can
 * read and write its own (encrypted) repository and nothing else on this host — not another
 * client's repository, not the pgBackRest repository.
 */
import { files, restic, systemd, users, UserError, type HostView, type Task } from 'infra';
import type { ResticVars } from './role.js';

export const CLIENT_GROUP = 'restic';
export const CLIENT_KEY = '/etc/restic/id_ed25519';
export const KEYS_DIR = '/etc/ssh/restic-keys';

/** The repository host's user for a client ("restic-web1"): useradd's rules, 32 characters at most. */
export function clientUser(host: string): string {
  const user = `restic-${host.toLowerCase()}`;
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(user)) {
    throw new UserError(`role restic: host "${host}" gives the repository user "${user}", which useradd refuses`, {
      hint: 'host names of backed-up hosts: letters, digits and "-", at most 25 characters',
    });
  }
  return user;
}

/** The repository host: the first host of the group (a second one would be a second, unsynchronised copy). */
export function repositoryHost(v: ResticVars, hosts: (p: string) => HostView[]): HostView {
  const [first] = safeHosts(hosts, v.restic_repository_group);
  if (!first) {
    throw new UserError(`role restic: no host in group "${v.restic_repository_group}" to hold the repositories`, {
      hint: 'add the backup host to the inventory (groups: [backup]) or set restic_repository_group',
    });
  }
  return first;
}

export function repositoryTasks(v: ResticVars, hosts: (p: string) => HostView[]): Task[] {
  const clients = safeHosts(hosts, v.restic_clients).filter((h) => !h.groups.includes(v.restic_repository_group));
  const perClient = clients.flatMap((c) => {
    const user = clientUser(c.name);
    const chroot = `${v.restic_repository_root}/${user}`;
    return [
      users.user({ name: user, group: CLIENT_GROUP, system: true, home: chroot, shell: '/usr/sbin/nologin', createHome: false, comment: `restic repository of ${c.name}` }),
      // sshd's chroot: every directory up to it root-owned, not group/other-writable.
      files.directory({ path: chroot, owner: 'root', group: 'root', mode: '0755' }),
      files.directory({ path: `${chroot}/repo`, owner: user, group: CLIENT_GROUP, mode: '0700' }),
      restic.peerKey({ peer: c.name, src: `${CLIENT_KEY}.pub`, dest: `${KEYS_DIR}/${user}`, prefix: 'restrict', owner: 'root', group: 'root', mode: '0644' }),
    ];
  });
  return [
    users.group({ name: CLIENT_GROUP, system: true }),
    files.directory({ path: v.restic_repository_root, owner: 'root', group: 'root', mode: '0755' }),
    files.directory({ path: KEYS_DIR, owner: 'root', group: 'root', mode: '0755' }),
    ...perClient,
    files.template({
      src: 'sshd-restic.conf.hbs',
      dest: '/etc/ssh/sshd_config.d/30-restic.conf',
      owner: 'root',
      group: 'root',
      mode: '0644',
      vars: { group: CLIENT_GROUP, keysDir: KEYS_DIR, root: v.restic_repository_root },
      validate: 'sshd -t -f %s',
      notify: 'reload ssh',
    }),
    systemd.service({ name: 'ssh', enabled: true, state: 'started' }),
  ];
}

function safeHosts(hosts: (p: string) => HostView[], pattern: string): HostView[] {
  try {
    return hosts(pattern);
  } catch {
    return [];
  }
}
