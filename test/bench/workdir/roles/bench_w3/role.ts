/**
 * W3: 100 small files, infra side: plain TypeScript loop, one files.file task per file.
 * Same end state as test/bench/ansible/w3.yaml.
 */
import { defineRole, files } from 'infra';

const COUNT = 100;
const name = (i: number): string => `f${String(i).padStart(3, '0')}.txt`;

export default defineRole({
  name: 'bench_w3',
  tasks: () => [
    files.directory({ path: '/opt/bench3', mode: '0755' }),
    ...Array.from({ length: COUNT }, (_, k) =>
      files.file({ path: `/opt/bench3/${name(k + 1)}`, content: `bench file ${k + 1}\n`, owner: 'root', group: 'root', mode: '0644' }),
    ),
  ],
});
