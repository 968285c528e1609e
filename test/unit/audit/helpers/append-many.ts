/** Appends N records to FILE, signed with KEY (argv), from this process: for the cross-process lock test. */
import { appendLocal, buildRecord, loadSigningKey } from '../../../../src/audit/index.js';

const [file, keyFile, count, tag] = process.argv.slice(2);
const key = loadSigningKey(keyFile);
for (let i = 0; i < Number(count); i++) {
  await appendLocal(
    buildRecord({
      runId: `${tag}-${i}`,
      commandLine: 'infra apply',
      inventory: 'lab',
      mode: 'apply',
      recap: [],
      changedTasks: {},
      started: Date.now(),
      ended: Date.now(),
      exitCode: 0,
      git: null,
    }),
    key,
    file,
  );
}
