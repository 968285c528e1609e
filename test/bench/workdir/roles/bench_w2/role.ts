/**
 * W2: the 10-task role of the benchmark, infra side. Same end state as
 * test/bench/ansible/w2.yaml, checked on every host by test/bench/hosts.ts.
 */
import { defineRole, z, apt, files, systemd, users, sysctl, command } from 'infra';

export default defineRole({
  name: 'bench_w2',
  vars: z.object({ port: z.number().int().default(8080) }),
  tasks: ({ vars }) => [
    apt.packages({ names: ['tree', 'cron'] }),
    users.group({ name: 'benchgrp' }),
    users.user({ name: 'benchuser', group: 'benchgrp', shell: '/bin/bash' }),
    // root's: root writes the files below, and refuses a directory another user could swap them in.
    files.directory({ path: '/opt/bench', owner: 'root', group: 'benchgrp', mode: '0755' }),
    files.template({ src: 'app.conf.hbs', dest: '/opt/bench/app.conf', owner: 'root', group: 'root', mode: '0644', vars: { port: vars.port } }),
    files.copy({ src: 'blob.bin', dest: '/opt/bench/blob.bin', owner: 'root', group: 'root', mode: '0644' }),
    files.line({ path: '/etc/environment', regexp: '^BENCH_MODE=', line: 'BENCH_MODE=fast' }),
    // /proc/sys is read-only in these containers: persist only (Ansible: sysctl_set/reload false).
    sysctl.param({ name: 'net.ipv4.tcp_syncookies', value: 1, file: '/etc/sysctl.d/60-bench.conf', live: false }),
    systemd.service({ name: 'cron', enabled: true, state: 'started' }),
    command.run({ cmd: 'touch /opt/bench/.initialized', creates: '/opt/bench/.initialized' }),
  ],
});
