/**
 * haproxy-keepalived: the public entry of the stack. HAProxy terminates TLS on a floating
 * VIP and balances the API servers; Keepalived keeps the VIP on one healthy load balancer.
 *
 *   packages → kernel (bind the VIP before holding it) → certificate → haproxy.cfg (checked
 *   with haproxy -c) → haproxy running → keepalived check + keepalived.conf (checked with
 *   keepalived -t) → keepalived running.
 *
 * Changes are applied by reload (haproxy: seamless; keepalived: SIGHUP, the VIP stays where
 * it is); a restart happens only when a package upgrade replaced the running binary.
 */
import { defineRole, z, apt, files, systemd, sysctl, command, meta, sh, UserError } from 'infra';
import { haproxyVars, haproxyModel, ADMIN_SOCKET, SERVER_STATE_FILE } from './haproxy.js';
import { keepalivedVars, vrrpModel } from './keepalived.js';
import { tlsSchema, tlsTasks } from './tls.js';

export const vars = z.object({
  haproxy_tls: tlsSchema,
  ...haproxyVars.shape,
  ...keepalivedVars.shape,
  /** Ubuntu 22.04 only: the ASCII-armored key of ppa:vbernat/haproxy-2.6 (Jammy ships 2.4). */
  haproxy_ppa_key: z.string().optional(),
});

const CHECK_SCRIPT = '/etc/keepalived/check-haproxy';
const PPA = 'https://ppa.launchpadcontent.net/vbernat/haproxy-2.6/ubuntu';

/** A reload that passed `haproxy -c` can still fail at run time (a port taken, a limit): say so. */
const RELOAD_HAPROXY =
  'systemctl reload haproxy.service && sleep 1 && systemctl is-active --quiet haproxy.service || { journalctl -u haproxy.service -n 15 --no-pager -o cat >&2; exit 1; }';

/** True (exit 0) when the unit's running process executes a binary that a package upgrade replaced. */
const binaryReplaced = (unit: string) =>
  sh`pid=$(systemctl show -p MainPID --value ${unit}) && [ "$pid" -gt 0 ] && readlink /proc/$pid/exe | grep -q ' (deleted)$'`;

export default defineRole({
  name: 'haproxy-keepalived',
  vars,
  tasks: ({ vars: v, host, hosts }) => {
    const self = hosts(host.name)[0];
    const lb = haproxyModel(v, self, host.facts.memoryMb, hosts);
    const vrrp = vrrpModel(v, self, host.facts.iface, hosts);
    return [
      ...packageTasks(host.facts.os, v.haproxy_ppa_key),

      // haproxy binds the VIP on every node, holding it or not.
      sysctl.param({ name: 'net.ipv4.ip_nonlocal_bind', value: 1, file: '/etc/sysctl.d/90-infra-haproxy-keepalived.conf' }),

      // HAProxy
      ...tlsTasks(v.haproxy_tls, v.vip, 'reload haproxy'),
      systemd.unit({
        name: 'haproxy',
        dropIn: 'infra-server-state',
        src: 'haproxy-server-state.conf.hbs',
        vars: { adminSocket: ADMIN_SOCKET, serverStateFile: SERVER_STATE_FILE },
      }),
      // Rewritten by every reload; an empty one (format version 1) before the first keeps the config check quiet.
      command.run({ cmd: sh`umask 077 && echo 1 > ${SERVER_STATE_FILE}`, creates: SERVER_STATE_FILE, name: 'create the server state file' }),
      files.template({
        src: 'haproxy.cfg.hbs',
        dest: '/etc/haproxy/haproxy.cfg',
        mode: '0640',
        owner: 'root',
        group: 'haproxy',
        validate: 'haproxy -c -f %s',
        vars: { lb },
        notify: 'reload haproxy',
      }),
      systemd.service({ name: 'haproxy', enabled: true, state: 'started' }),
      // The master re-executes the binary on reload: an upgrade needs no restart.
      command.run({ cmd: RELOAD_HAPROXY, onlyIf: binaryReplaced('haproxy'), name: 'reload haproxy onto its upgraded binary' }),

      // Keepalived
      files.template({ src: 'check-haproxy.sh.hbs', dest: CHECK_SCRIPT, mode: '0755', owner: 'root', group: 'root' }),
      files.template({
        src: 'keepalived.conf.hbs',
        dest: '/etc/keepalived/keepalived.conf',
        mode: '0600',
        owner: 'root',
        group: 'root',
        validate: 'keepalived -t -f %s',
        vars: { vrrp, checkScript: CHECK_SCRIPT },
        notify: 'reload keepalived',
      }),
      ...(v.keepalived_auth_pass
        ? []
        : [meta.skip({ what: 'VRRP authentication', reason: 'keepalived_auth_pass is not set: peers are fenced by the firewall only (VRRP from the lb hosts)' })]),
      systemd.service({ name: 'keepalived', enabled: true, state: 'started' }),
      command.run({ cmd: 'systemctl restart keepalived', onlyIf: binaryReplaced('keepalived'), name: 'restart keepalived onto its upgraded binary' }),
    ];
  },
  handlers: {
    'reload haproxy': command.run({ cmd: RELOAD_HAPROXY, name: 'reload haproxy' }),
    'reload keepalived': systemd.reload('keepalived'),
  },
});

/** Debian 12 ships HAProxy 2.6; Ubuntu 22.04 ships 2.4, so 2.6 comes from the maintainer's PPA. */
function packageTasks(os: { id: string; codename: string }, ppaKey: string | undefined) {
  const common = ['keepalived', 'socat'];
  if (os.id !== 'ubuntu') return [apt.packages({ names: ['haproxy', ...common] })];
  if (!ppaKey) {
    throw new UserError(`Ubuntu ${os.codename}: HAProxy 2.6 comes from ppa:vbernat/haproxy-2.6, and haproxy_ppa_key is not set`, {
      hint: 'export the PPA key (fingerprint CFFB779AADC995E4F350A060505D97A41C61B9CD) with `gpg --armor --export` and set haproxy_ppa_key in group_vars/lb.yaml',
    });
  }
  return [
    apt.repository({ name: 'haproxy-2.6', uris: PPA, suites: os.codename, key: ppaKey }),
    apt.packages({ names: ['haproxy=2.6.*', ...common] }),
  ];
}
