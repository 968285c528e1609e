/**
 * The end state both tools must reach, in one place: the role, the playbooks and the checks
 * read their names and contents from here (the playbooks repeat the literals; the checks
 * would catch any drift between them).
 */
import { createHash } from 'node:crypto';

export const W2 = {
  packages: ['tree', 'cron'],
  group: 'benchgrp',
  user: 'benchuser',
  dir: '/opt/bench',
  template: '/opt/bench/app.conf',
  blob: '/opt/bench/blob.bin',
  lineFile: '/etc/environment',
  line: 'BENCH_MODE=fast',
  // /proc/sys is mounted read-only inside these containers (even net.*): the value is
  // persisted to a sysctl.d file only (infra live:false, Ansible sysctl_set/reload false).
  sysctlKey: 'net.ipv4.tcp_syncookies',
  sysctlValue: '1',
  sysctlFile: '/etc/sysctl.d/60-bench.conf',
  service: 'cron',
  marker: '/opt/bench/.initialized',
  port: 8080,
};

export const W3 = { dir: '/opt/bench3', count: 100 };

/** W3 file i (1-based): name and content. */
export const w3Name = (i: number): string => `f${String(i).padStart(3, '0')}.txt`;
export const w3Content = (i: number): string => `bench file ${i}\n`;

/** What the template renders to on a host (both tools' templates must produce exactly this). */
export const templateContent = (host: string): string => `# managed by the benchmark\nhost = ${host}\nport = ${W2.port}\n`;

/** 100 KB, deterministic: hex lines of a SHA-256 chain (text, so every tool treats it the same). */
export function blobContent(): Buffer {
  const lines: string[] = [];
  let h = 'infra-bench';
  let size = 0;
  while (size < 100 * 1024) {
    h = createHash('sha256').update(h).digest('hex');
    const line = `${h}${h.slice(0, 63)}\n`; // 128 bytes per line
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join(''), 'utf8');
}

export const sha256 = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

/** `sha256sum f*` output for the W3 files, hashed again: one value for all 100 files. */
export function w3Digest(): string {
  const listing = Array.from({ length: W3.count }, (_, k) => `${sha256(w3Content(k + 1))}  ${w3Name(k + 1)}\n`).join('');
  return sha256(listing);
}
