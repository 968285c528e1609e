/**
 * roles/haproxy-keepalived with no host: the task list built from vars + facts (Debian 12 and
 * Ubuntu 22.04), backends and peers from the inventory, priorities, sizing from memory, the
 * variables' validation, and every template rendered by the real renderer.
 */
import { describe, it, expect } from 'vitest';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdirSync } from 'node:fs';
import role, { vars as roleVars } from '../../../roles/haproxy-keepalived/role.js';
import { maxconnFor } from '../../../roles/haproxy-keepalived/haproxy.js';
import { createRenderer } from '../../../src/render/template.js';
import { Secret } from '../../../src/secrets/secret.js';
import { UserError } from '../../../src/errors.js';
import type { Task } from '../../../src/modules/types.js';
import type { Facts } from '../../../src/facts/types.js';
import { tls } from '../../../src/modules/index.js';
import { contextFor, fakeInventory, type FakeInventory } from './context.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const ROLE_DIR = join(REPO, 'roles/haproxy-keepalived');
const renderer = createRenderer({ sharedDir: join(REPO, 'templates') });

const CERT = '-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIBkey\n-----END PRIVATE KEY-----\n';
const lbVars = () => ({
  vip: '10.20.0.10',
  haproxy_tls: { source: 'vault', cert: CERT, key: new Secret(KEY) },
  keepalived_auth_pass: new Secret('vrrp-pw1'),
});

const FLEET: FakeInventory = {
  hosts: {
    bastion: { address: '203.0.113.10', groups: ['bastion'], vars: { private_address: '10.20.0.2' } },
    lb1: { address: '10.20.0.11', groups: ['lb'], bastion: 'bastion' },
    lb2: { address: '10.20.0.12', groups: ['lb'], bastion: 'bastion' },
    api1: { address: '10.20.0.21', groups: ['api'], bastion: 'bastion' },
    api2: { address: '10.20.0.22', groups: ['api'], bastion: 'bastion' },
    mon1: { address: '10.20.0.51', groups: ['monitoring'], bastion: 'bastion' },
  },
  groups: { lb: { vars: lbVars() } },
};
const inv = fakeInventory(FLEET);
const UBUNTU: Partial<Facts> = { os: { id: 'ubuntu', versionId: '22.04', codename: 'jammy', prettyName: 'Ubuntu 22.04.4 LTS', family: 'debian' } };
const PPA_KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF...\n-----END PGP PUBLIC KEY BLOCK-----\n';

const ctxOf = (host: string, opts: Parameters<typeof contextFor>[3] = {}, inventory = inv) =>
  contextFor(roleVars, inventory, host, { facts: { iface: 'eth0', memoryMb: 4096, ...opts.facts }, vars: opts.vars });
const tasksOf = (host: string, opts: Parameters<typeof contextFor>[3] = {}, inventory = inv) => role.tasks(ctxOf(host, opts, inventory));

const params = (t: Task) => t.params as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const byModule = (tasks: Task[], name: string) => tasks.filter((t) => t.module.name === name);
const templateTask = (tasks: Task[], src: string) => {
  const t = byModule(tasks, 'files.template').find((x) => params(x).src === src);
  if (!t) throw new Error(`no files.template task for ${src}`);
  return t;
};
const template = (tasks: Task[], src: string) => params(templateTask(tasks, src));

/** src → rendered text, with the data the engine gives templates. */
async function render(host: string, opts: Parameters<typeof contextFor>[3] = {}, inventory = inv): Promise<Map<string, string>> {
  const ctx = ctxOf(host, opts, inventory);
  const out = new Map<string, string>();
  for (const t of role.tasks(ctx).filter((x) => x.module.name === 'files.template' || (x.module.name === 'systemd.unit' && params(x).src))) {
    const p = params(t);
    const data = { vars: { ...(ctx.vars as Record<string, unknown>), ...p.vars }, host: { name: host, address: ctx.host.address, groups: ctx.host.groups }, facts: ctx.host.facts };
    out.set(p.src, await renderer.renderFile(ROLE_DIR, p.src, data));
  }
  return out;
}
const lines = (text: string) => text.split('\n').map((l) => l.trim());

describe('packages per distribution', () => {
  it('Debian 12: HAProxy 2.6, Keepalived and socat from Debian itself', () => {
    const tasks = tasksOf('lb1');
    expect(byModule(tasks, 'apt.repository')).toEqual([]);
    expect(params(byModule(tasks, 'apt.packages')[0]).names).toEqual(['haproxy', 'keepalived', 'socat']);
  });

  it('Ubuntu 22.04: HAProxy 2.6 from the PPA for jammy, pinned to 2.6', () => {
    const tasks = tasksOf('lb1', { facts: UBUNTU, vars: { haproxy_ppa_key: PPA_KEY } });
    const repo = params(byModule(tasks, 'apt.repository')[0]);
    expect(repo).toMatchObject({ name: 'haproxy-2.6', uris: 'https://ppa.launchpadcontent.net/vbernat/haproxy-2.6/ubuntu', suites: 'jammy', key: PPA_KEY });
    expect(params(byModule(tasks, 'apt.packages')[0]).names).toEqual(['haproxy=2.6.*', 'keepalived', 'socat']);
    expect(tasks.findIndex((t) => t.module.name === 'apt.repository')).toBeLessThan(tasks.findIndex((t) => t.module.name === 'apt.packages'));
  });

  it('Ubuntu 22.04 without the PPA key: an input error saying how to get it', () => {
    expect(() => tasksOf('lb1', { facts: UBUNTU })).toThrow(UserError);
    expect(() => tasksOf('lb1', { facts: UBUNTU })).toThrow(/ppa:vbernat\/haproxy-2\.6, and haproxy_ppa_key is not set/);
  });
});

describe('the install guide order, validation and reloads', () => {
  const tasks = tasksOf('lb1');
  const order = tasks.map((t) => `${t.module.name} ${params(t).dest ?? params(t).path ?? params(t).name ?? ''}`.trim());
  const at = (s: string) => order.findIndex((o) => o.includes(s));

  it('nonlocal bind before haproxy starts; certificate before the config that names it; haproxy before keepalived', () => {
    expect(at('net.ipv4.ip_nonlocal_bind')).toBeLessThan(at('systemd.service haproxy'));
    expect(at('/etc/haproxy/certs/site.pem.key')).toBeLessThan(at('/etc/haproxy/haproxy.cfg'));
    expect(at('/etc/keepalived/check-haproxy')).toBeLessThan(at('/etc/keepalived/keepalived.conf'));
    expect(at('systemd.service haproxy')).toBeLessThan(at('systemd.service keepalived'));
  });

  it('configs are checked by the services themselves before they are installed; changes reload', () => {
    expect(template(tasks, 'haproxy.cfg.hbs')).toMatchObject({ validate: 'haproxy -c -f %s' });
    expect(templateTask(tasks, 'haproxy.cfg.hbs').notify).toEqual(['reload haproxy']);
    expect(template(tasks, 'keepalived.conf.hbs')).toMatchObject({ validate: 'keepalived -t -f %s', mode: '0600', owner: 'root' });
    expect(templateTask(tasks, 'keepalived.conf.hbs').notify).toEqual(['reload keepalived']);
    // A new certificate or key is picked up by the same reload.
    expect(byModule(tasks, 'files.file').map((t) => t.notify)).toEqual([['reload haproxy'], ['reload haproxy']]);
    expect(Object.keys(role.handlers!)).toEqual(['reload haproxy', 'reload keepalived']);
    expect(params(role.handlers!['reload haproxy']).cmd).toMatch(/^systemctl reload haproxy\.service && sleep 1 && systemctl is-active --quiet haproxy\.service/);
    expect(params(role.handlers!['reload keepalived'])).toMatchObject({ name: 'keepalived', state: 'reloaded' });
  });

  it('no task restarts haproxy; keepalived restarts only onto a replaced binary', () => {
    const restarts = tasks.filter((t) => /restart/.test(JSON.stringify(t.params)));
    expect(restarts.map((t) => [t.name, params(t).onlyIf])).toEqual([['restart keepalived onto its upgraded binary', expect.stringContaining("readlink /proc/$pid/exe | grep -q ' (deleted)$'")]]);
  });

  it('the TLS key and the certificate: files only root and haproxy read, the key as a Secret', () => {
    const key = byModule(tasks, 'files.file').find((t) => params(t).path === '/etc/haproxy/certs/site.pem.key')!;
    expect(params(key)).toMatchObject({ mode: '0640', owner: 'root', group: 'haproxy' });
    expect(params(key).content).toBeInstanceOf(Secret);
    expect(params(key).content.reveal()).toBe(KEY);
  });
});

describe('TLS sources (tls.ts)', () => {
  it('pki: tls.certificate from the inventory CA, for the VIP and the site names, key made on the host for haproxy only', () => {
    const tasks = tasksOf('lb1', { vars: { haproxy_tls: { source: 'pki', names: ['www.example.com'] } } });
    const cert = byModule(tasks, 'tls.certificate');
    expect(cert.map(params)).toEqual([
      { certPath: '/etc/haproxy/certs/site.pem', keyPath: '/etc/haproxy/certs/site.pem.key', caPath: '/etc/haproxy/certs/ca.crt', owner: 'root', group: 'haproxy', keyMode: '0640', mode: '0640', sans: ['10.20.0.10', 'www.example.com'] },
    ]);
    expect(cert[0].notify).toEqual(['reload haproxy']);
    expect(byModule(tasks, 'files.file')).toEqual([]);
    expect(tls.certificate.module.params.safeParse(cert[0].params).success).toBe(true);
  });

  it('vault: the chain and the key written as files, the key never in clear in the task', () => {
    const files = byModule(tasksOf('lb1'), 'files.file');
    expect(files.map((t) => params(t).path)).toEqual(['/etc/haproxy/certs/site.pem', '/etc/haproxy/certs/site.pem.key']);
    expect(JSON.stringify(files.map((t) => t.params))).not.toContain('MIIBkey');
  });
});

describe('inventory → backends, stats sources, VRRP peers', () => {
  it('one server per host of the api group, at its private address, named after the host', async () => {
    const cfg = lines((await render('lb1')).get('haproxy.cfg.hbs')!);
    expect(cfg).toEqual(expect.arrayContaining(['backend api', 'server api1 10.20.0.21:80', 'server api2 10.20.0.22:80']));
  });

  it('a host added to the group becomes a server on the next apply (horizontal scaling)', async () => {
    const grown = fakeInventory({ ...FLEET, hosts: { ...FLEET.hosts, api3: { address: '10.20.0.23', groups: ['api'], vars: { private_address: '10.30.0.23' } } } });
    const servers = template(tasksOf('lb1', {}, grown), 'haproxy.cfg.hbs').vars.lb.servers;
    expect(servers.map((m: { name: string; endpoint: string }) => `${m.name} ${m.endpoint}`)).toEqual(['api1 10.20.0.21:80', 'api2 10.20.0.22:80', 'api3 10.30.0.23:80']);
  });

  it('stats bound to the host private address, readable from loopback and the monitoring group only', async () => {
    const cfg = lines((await render('lb2')).get('haproxy.cfg.hbs')!);
    expect(cfg).toEqual(expect.arrayContaining(['bind 10.20.0.12:8404', 'acl allowed src 127.0.0.1 10.20.0.51', 'http-request deny deny_status 403 unless allowed']));
    expect(cfg).toContain('http-request use-service prometheus-exporter if { path /metrics }');
  });

  it('priorities from inventory order (150, 140), peers are the others, source is the host own address', () => {
    const v1 = template(tasksOf('lb1'), 'keepalived.conf.hbs').vars.vrrp;
    const v2 = template(tasksOf('lb2'), 'keepalived.conf.hbs').vars.vrrp;
    expect(v1).toEqual({ priority: 150, interface: 'eth0', sourceAddress: '10.20.0.11', peers: ['10.20.0.12'] });
    expect(v2).toEqual({ priority: 140, interface: 'eth0', sourceAddress: '10.20.0.12', peers: ['10.20.0.11'] });
    expect(template(tasksOf('lb2', { vars: { keepalived_priority: 200, keepalived_interface: 'ens4' } }), 'keepalived.conf.hbs').vars.vrrp).toMatchObject({ priority: 200, interface: 'ens4' });
  });

  it('what cannot work is an input error: a host outside the group, a VIP that is a host address, no interface', () => {
    const outsider = fakeInventory({ ...FLEET, hosts: { ...FLEET.hosts, lb3: { address: '10.20.0.13', groups: ['edge'], vars: lbVars() } } });
    expect(() => tasksOf('lb3', {}, outsider)).toThrow(/lb3 is not in keepalived_group "lb"/);
    expect(() => tasksOf('lb1', { vars: { vip: '10.20.0.12' } })).toThrow(/vip 10\.20\.0\.12 is the address of lb2/);
    expect(() => tasksOf('lb1', { facts: { iface: undefined } })).toThrow(/no default-route interface/);
    expect(() => tasksOf('lb1', { vars: { haproxy_backend: { group: 'apii' } } })).toThrow(/haproxy_backend\.group "apii" is not a group or host/);
  });
});

describe('sizing from facts', () => {
  it.each([
    [1024, 4000],
    [4096, 16000],
    [65536, 200000],
    [256, 2000],
  ])('%i MB of memory → frontend maxconn %i', (mb, want) => expect(maxconnFor(mb)).toBe(want));

  it('reaches the frontend; haproxy_maxconn overrides it; the process limit is left to haproxy (its FD limit)', async () => {
    const cfg = (await render('lb1', { facts: { memoryMb: 8192 } })).get('haproxy.cfg.hbs')!;
    expect(cfg).toMatch(/^frontend web\n {4}maxconn 32000$/m);
    expect(cfg.split('frontend web')[0]).not.toMatch(/^\s*maxconn/m);
    expect((await render('lb1', { vars: { haproxy_maxconn: 5000 } })).get('haproxy.cfg.hbs')).toMatch(/^ {4}maxconn 5000$/m);
  });
});

describe('templates', () => {
  it('every template of the role is used and renders without holes', async () => {
    const out = await render('lb1');
    expect([...out.keys()].sort()).toEqual(readdirSync(join(ROLE_DIR, 'templates')).sort());
    for (const text of out.values()) expect(text).not.toMatch(/undefined|\[object Object\]|\*\*\*\*/);
  });

  it('haproxy.cfg: TLS 1.2+ with modern ciphers, redirect, HSTS, forwarding headers, health checks', async () => {
    const cfg = lines((await render('lb1')).get('haproxy.cfg.hbs')!);
    expect(cfg).toEqual(
      expect.arrayContaining([
        'ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets',
        'ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
        'bind 10.20.0.10:80',
        'bind 10.20.0.10:443 ssl crt /etc/haproxy/certs/site.pem alpn h2,http/1.1',
        'http-request redirect scheme https code 301 unless { ssl_fc }',
        'http-response set-header Strict-Transport-Security "max-age=63072000" if { ssl_fc }',
        'http-request del-header X-Forwarded-For',
        'option forwardfor',
        'http-request set-header X-Forwarded-Proto https',
        'balance roundrobin',
        'option httpchk',
        'http-check send meth GET uri /health ver HTTP/1.1 hdr Host %[srv_name]',
        'http-check expect status 200',
        'stats socket /run/haproxy/admin.sock mode 660 level admin expose-fd listeners',
        'server-state-file /var/lib/haproxy/server-state',
        'load-server-state-from-file global',
      ]),
    );
    expect(cfg.find((l) => l.startsWith('ssl-default-bind-ciphers '))).not.toMatch(/CBC|RC4|3DES|SHA(:|$)|(^|[ :])DHE-/);
  });

  it('haproxy.cfg: edge protection from variables (rate, connections, body size, denied paths and methods, slowloris)', async () => {
    const cfg = lines(
      (
        await render('lb1', {
          vars: {
            haproxy_rate_limit: { requests: 50, period: '20s', connections: 30, exempt: ['monitoring', '192.0.2.0/24'] },
            haproxy_max_body_bytes: 1048576,
            haproxy_deny_paths: ['/admin', '/.git'],
            haproxy_deny_methods: ['TRACE'],
            haproxy_timeouts: { http_request: '5s' },
          },
        })
      ).get('haproxy.cfg.hbs')!,
    );
    expect(cfg).toEqual(
      expect.arrayContaining([
        'stick-table type ip size 1m expire 20s store http_req_rate(20s),conn_cur',
        'acl rate_exempt src 10.20.0.51 192.0.2.0/24',
        'tcp-request connection track-sc0 src unless rate_exempt',
        'tcp-request connection reject if { sc0_conn_cur gt 30 }',
        'http-request deny deny_status 429 if { sc0_http_req_rate gt 50 }',
        'http-request deny deny_status 413 if { req.hdr_val(content-length) gt 1048576 }',
        'http-request deny deny_status 403 if { path_beg /admin /.git }',
        'http-request deny deny_status 405 if { method TRACE }',
        'timeout http-request 5s',
      ]),
    );
  });

  it('keepalived.conf: BACKUP + nopreempt everywhere, unicast, the vault password, the haproxy check', async () => {
    const conf = lines((await render('lb2')).get('keepalived.conf.hbs')!);
    expect(conf).toEqual(
      expect.arrayContaining([
        'state BACKUP',
        'nopreempt',
        'interface eth0',
        'virtual_router_id 51',
        'priority 140',
        'unicast_src_ip 10.20.0.12',
        '10.20.0.11',
        'auth_pass vrrp-pw1',
        '10.20.0.10/32 dev eth0',
        'script "/etc/keepalived/check-haproxy"',
        'check_haproxy',
        'enable_script_security',
      ]),
    );
    expect(conf).not.toContain('state MASTER');
  });

  it('the haproxy reload keeps runtime server state: dumped through the admin socket before the seamless reload', async () => {
    const dropIn = lines((await render('lb1')).get('haproxy-server-state.conf.hbs')!);
    const reloads = dropIn.filter((l) => l.startsWith('ExecReload='));
    expect(reloads).toEqual([
      'ExecReload=',
      'ExecReload=/usr/sbin/haproxy -Ws -f $CONFIG -c -q $EXTRAOPTS',
      `ExecReload=-/bin/sh -c 'echo "show servers state" | socat stdio unix-connect:/run/haproxy/admin.sock > /var/lib/haproxy/server-state.new && mv /var/lib/haproxy/server-state.new /var/lib/haproxy/server-state'`,
      'ExecReload=/bin/kill -USR2 $MAINPID',
    ]);
  });

  it('the keepalived check script starts with its shebang', async () => {
    expect((await render('lb1')).get('check-haproxy.sh.hbs')!.startsWith('#!/bin/sh\n')).toBe(true);
  });
});

describe('variables: what would break the config, leak a secret or inject a directive is refused', () => {
  const parse = (v: Record<string, unknown>) => roleVars.safeParse({ ...lbVars(), ...v });
  it.each([
    ['a VRRP password in plain text', { keepalived_auth_pass: 'vrrp-pw1' }, /must be a vault value/],
    ['a VRRP password keepalived would cut', { keepalived_auth_pass: new Secret('longer-than-8') }, /at most 8 characters/],
    ['a TLS key in plain text', { haproxy_tls: { source: 'vault', cert: CERT, key: KEY } }, /must be a vault value/],
    ['a certificate that is not PEM', { haproxy_tls: { source: 'vault', cert: 'hello', key: new Secret(KEY) } }, /cert must be a PEM certificate chain/],
    ['an unknown TLS source', { haproxy_tls: { source: 'files' } }, /Invalid discriminator value/],
    ['a time without its unit', { haproxy_timeouts: { client: '30' } }, /an HAProxy time with its unit/],
    ['a denied path with a space (a second directive)', { haproxy_deny_paths: ['/a } http-request allow if { always_true'] }, /a path prefix/],
    ['ciphers with a space', { haproxy_tls_ciphers: 'HIGH !aNULL' }, /haproxy_tls_ciphers: letters, digits/],
    ['a VIP that is not an address', { vip: '10.20.0.300' }, /an IPv4 address/],
    ['a typo in a nested block', { haproxy_rate_limit: { requets: 10 } }, /Unrecognized key/],
  ])('%s', (_what, v, message) => {
    const r = parse(v);
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error.issues.map((i) => i.message).join('; ')).toMatch(message);
  });

  it('vip and the certificate source are required; the rest has defaults', () => {
    const r = roleVars.safeParse({});
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error.issues.map((i) => i.path.join('.')).sort()).toEqual(['haproxy_tls', 'vip']);
    expect(parse({}).success).toBe(true);
  });

  it('without keepalived_auth_pass: no authentication block, and the run says so (skipped, with the reason)', async () => {
    const noAuth = fakeInventory({ ...FLEET, groups: { lb: { vars: { vip: '10.20.0.10', haproxy_tls: { source: 'pki' } } } } });
    const skip = byModule(tasksOf('lb1', {}, noAuth), 'meta.skip').map(params);
    expect(skip).toEqual([{ what: 'VRRP authentication', reason: expect.stringMatching(/keepalived_auth_pass is not set: peers are fenced by the firewall only/) }]);
    expect(byModule(tasksOf('lb1'), 'meta.skip')).toEqual([]);
    const conf = (await render('lb1', {}, noAuth)).get('keepalived.conf.hbs')!;
    expect(conf).not.toMatch(/authentication|auth_pass/);
  });
});
