/**
 * Issue 22 end to end: every file a run replaces is kept on the host; `infra rollback RUN`
 * puts back the hardening role's sshd drop-in and the bastion role's template byte-exact,
 * reloads sshd through their handlers, and `infra plan` then shows the original change pending
 * again; a file edited by hand after the run is a conflict left alone; a secret-bearing file is
 * restored without its content in any output; `infra history` lists the runs; retention prunes.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFleet, type Fleet } from './fleet.js';
import { infra, taskResults, vaultEncrypt, type CliResult } from './helpers/cli.js';

const SSHD = '/etc/ssh/sshd_config.d/20-hardening.conf';
const BASTION_CONF = '/etc/ssh/sshd_config.d/05-bastion.conf';
const SECRET_FILE = '/etc/rollback-test.secret';
const LINK = '/etc/rollback-test.link';
const RUNS = '/var/lib/infra/runs';
const HOST = 'target1';
const PLAYBOOK = `# rollback test: two roles' files and a secret-bearing file on one host
- name: baseline
  hosts: targets
  roles: [bastion, hardening]
  tasks:
    - files.file: { path: ${SECRET_FILE}, content: "token={{ vars.rb_secret }}\\n", mode: "0600", owner: root, group: root }
    - files.file: { path: ${LINK}, content: "managed\\n", mode: "0644" }
`;

let fleet: Fleet;
let work: string;
let passwordFile: string;
let playbook: string;
const runs: Record<string, string> = {};
const firstShas: Record<string, string> = {};
const changedShas: Record<string, string> = {};

const sha = async (path: string): Promise<string> => (await fleet.exec(HOST, `sha256sum ${path}`)).stdout.split(' ')[0];
const shas = async (): Promise<Record<string, string>> => ({ [SSHD]: await sha(SSHD), [BASTION_CONF]: await sha(BASTION_CONF), [SECRET_FILE]: await sha(SECRET_FILE) });
const sshdT = async (): Promise<string> => (await fleet.exec(HOST, 'sshd -T')).stdout;
const runIdOf = (r: CliResult): string => (r.events.find((e) => e.type === 'run.start') as { runId: string }).runId;
const changedLabels = (r: CliResult) => taskResults(r, HOST).filter((e) => e.status === 'changed' && !e.handler).map((e) => e.task).sort();
const TIMEOUT = 600_000;

async function setVars(vars: Record<string, unknown>, secret: string): Promise<void> {
  const vaulted = await vaultEncrypt('rb_secret', secret, passwordFile);
  const lines = Object.entries(vars).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  await writeFile(join(fleet.inventoryDir, 'group_vars', 'targets.yaml'), [...lines, `rb_secret: ${vaulted}`, ''].join('\n'));
}

const apply = () => infra(['apply', playbook, '-i', fleet.inventoryDir, '--json'], { timeoutMs: TIMEOUT });
const rollback = (id: string, ...more: string[]) => infra(['rollback', id, '-i', fleet.inventoryDir, '--playbook', playbook, '-l', HOST, ...more], { timeoutMs: TIMEOUT });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'infra-rollback-'));
  passwordFile = join(work, 'vault-pass');
  await writeFile(passwordFile, 'rollback test vault password\n', { mode: 0o600 });
  process.env.INFRA_VAULT_PASSWORD_FILE = passwordFile;
  process.env.XDG_STATE_HOME = join(work, 'state');
  fleet = await startFleet({ targets: 1, groupVars: { targets: {} }, baseline: true }); // hardening's packages there
  playbook = join(fleet.inventoryDir, 'rollback.yaml');
  await writeFile(playbook, PLAYBOOK);
  await setVars({}, 'first-SECRET-aaaa');
  const first = await apply();
  expect(first.events.filter((e) => e.type === 'task.result' && e.status === 'failed')).toEqual([]);
  expect(first.code).toBe(0);
  runs.first = runIdOf(first);
  Object.assign(firstShas, await shas());
}, TIMEOUT + 120_000);
afterAll(async () => {
  await fleet?.down();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('infra rollback', () => {
  it('keeps what a run replaced; rollback restores it byte-exact, reloads sshd, and the change is pending again', async () => {
    await setVars({ ssh_max_auth_tries: 4, bastion_max_sessions: 7 }, 'second-SECRET-bbbb');
    const change = await apply();
    expect(change.code).toBe(0);
    runs.change = runIdOf(change);
    const changed = changedLabels(change);
    expect(changed).toEqual(expect.arrayContaining([expect.stringContaining(SSHD), expect.stringContaining(BASTION_CONF), expect.stringContaining(SECRET_FILE)]));
    Object.assign(changedShas, await shas());
    for (const p of [SSHD, BASTION_CONF, SECRET_FILE]) expect(changedShas[p], p).not.toBe(firstShas[p]);
    expect(await sshdT()).toMatch(/^maxauthtries 4$/m);
    expect(await sshdT()).toMatch(/^maxsessions 7$/m);

    // Kept on the host: root-only area, each old file with its bytes, owner and mode, and a manifest.
    const area = `${RUNS}/${runs.change}`;
    expect((await fleet.exec(HOST, `stat -c '%a %U' ${area}`)).stdout.trim()).toBe('700 root');
    expect((await fleet.exec(HOST, `sha256sum ${area}/files${SSHD}`)).stdout.split(' ')[0]).toBe(firstShas[SSHD]);
    expect((await fleet.exec(HOST, `stat -c '%a %U %G' ${area}/files${SECRET_FILE}`)).stdout.trim()).toBe('600 root root');
    const manifest = (await fleet.exec(HOST, `cat ${area}/manifest.jsonl`)).stdout;
    expect(manifest).toContain(`"path":"${BASTION_CONF}"`);
    expect(manifest).not.toContain('SECRET');

    // --check: the diffs it would apply, nothing changed, no secret.
    const check = await rollback(runs.change, '--check', '--diff');
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(BASTION_CONF);
    expect(check.stdout).toMatch(/MaxSessions 7/);
    expect(check.stdout + check.stderr).not.toMatch(/SECRET/);
    expect(await shas()).toEqual(changedShas);

    const back = await rollback(runs.change, '--json');
    expect(back.stdout + back.stderr).not.toMatch(/SECRET/);
    expect(back.code).toBe(0);
    runs.rollback = runIdOf(back);
    expect(runs.rollback).not.toBe(runs.change);
    expect(await shas()).toEqual(firstShas);
    const handlers = taskResults(back, HOST).filter((e) => e.handler);
    // bastion's and hardening's sshd drop-ins are commit-confirmed, activated inline: their activation (one command for both) runs again.
    expect(handlers.map((h) => [h.module, h.status])).toEqual(expect.arrayContaining([['command.run', 'changed']]));
    expect(handlers.find((h) => h.module === 'command.run')?.task).toContain('systemctl reload ssh');
    // The restored configuration is live: the handlers reloaded sshd.
    expect(await sshdT()).toMatch(/^maxauthtries 3$/m);
    expect(await sshdT()).toMatch(/^maxsessions 10$/m);
    expect((await fleet.exec(HOST, `stat -c '%a %U %G' ${SECRET_FILE}`)).stdout.trim()).toBe('600 root root');

    // The inventory still asks for the change: plan shows exactly that change pending again.
    const plan = await infra(['plan', playbook, '-i', fleet.inventoryDir, '--json', '--detailed-exitcode'], { timeoutMs: TIMEOUT });
    expect(plan.code).toBe(3);
    expect(changedLabels(plan)).toEqual(changed);

    // The rollback was a run: rolled back in turn, the change is back and live.
    const redo = await rollback(runs.rollback, '--json');
    expect(redo.code).toBe(0);
    runs.redo = runIdOf(redo);
    expect(await shas()).toEqual(changedShas);
    // The same handlers as the rollback ran (and any the role notifies too, e.g. hardening's AIDE update).
    expect(taskResults(redo, HOST).filter((e) => e.handler).map((h) => [h.module, h.status])).toEqual(expect.arrayContaining([['command.run', 'changed']]));
    expect(await sshdT()).toMatch(/^maxsessions 7$/m);
  }, TIMEOUT);

  it('a file edited by hand after the run is a conflict, left alone; the others are restored', async () => {
    await setVars({ ssh_max_auth_tries: 5, bastion_max_sessions: 8 }, 'second-SECRET-bbbb');
    // Before this run a symlink stands where the playbook wants a file: the run replaces it.
    await fleet.exec(HOST, `ln -sfn /etc/hostname ${LINK}`);
    const again = await apply();
    expect((await fleet.exec(HOST, `test -L ${LINK} || cat ${LINK}`)).stdout).toBe('managed\n');
    expect(again.code).toBe(0);
    runs.again = runIdOf(again);
    await fleet.exec(HOST, `echo '# edited by hand at 3 a.m.' >> ${BASTION_CONF}`);
    const edited = await sha(BASTION_CONF);

    const back = await rollback(runs.again, '--json');
    // Partial: exit 1, and said so once the recap is out.
    expect(back.code).toBe(1);
    expect(back.stderr).toMatch(/^rollback incomplete: 1 path\(s\) left alone .*--force also restores files changed after run [0-9a-f]{8}$/m);
    expect(back.recap).toEqual([expect.objectContaining({ host: HOST, failed: 0, skipped: 1 })]);
    const conflict = taskResults(back, HOST).find((e) => e.task.includes(BASTION_CONF));
    expect(conflict?.status).toBe('skipped');
    expect(conflict?.warning).toMatch(/conflict: .*changed after run/);
    expect(await sha(BASTION_CONF)).toBe(edited);
    expect(await sha(SSHD)).toBe(changedShas[SSHD]);
    expect(await sha(SECRET_FILE)).toBe(changedShas[SECRET_FILE]);
    expect(await sshdT()).toMatch(/^maxauthtries 4$/m);
    expect((await fleet.exec(HOST, `readlink ${LINK}`)).stdout).toBe('/etc/hostname\n');
  }, TIMEOUT);

  it('history lists the runs with who, when and what, newest first', async () => {
    const h = await infra(['history', '-i', fleet.inventoryDir, '-l', HOST], { timeoutMs: TIMEOUT });
    expect(h.code).toBe(0);
    const out = h.stdout;
    for (const id of [runs.first, runs.change, runs.rollback, runs.redo, runs.again]) expect(out).toContain(id);
    expect(out).toContain(`rollback of ${runs.change}`);
    expect(out).toContain(`rollback of ${runs.rollback}`);
    expect(out).toMatch(new RegExp(`${runs.change}  \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d  \\S+@\\S+  apply \\(changed\\)  infra apply`));
    expect(out).toMatch(new RegExp(`changed +${BASTION_CONF.replace(/\//g, '\\/')}`));
    expect(out.indexOf(runs.again)).toBeLessThan(out.indexOf(runs.change));
    expect(out).not.toMatch(/SECRET/);

    // A run no host keeps (never was, a check, pruned) is an input error: exit 2, nothing done.
    const unknown = await rollback('deadbeef');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no host of target1 keeps run deadbeef/);
  }, TIMEOUT);

  it('retention: runs older than infra_keep_days and beyond infra_keep_runs are pruned', async () => {
    const kept = async () => (await fleet.exec(HOST, `ls ${RUNS}`)).stdout.split('\n').filter(Boolean).sort();
    expect(await kept()).toEqual(expect.arrayContaining([runs.first, runs.change, runs.rollback, runs.again]));
    await fleet.exec(HOST, `touch -d '40 days ago' ${RUNS}/${runs.first}/manifest.jsonl`);
    await setVars({ ssh_max_auth_tries: 4, bastion_max_sessions: 7, infra_keep_days: 30 }, 'third-SECRET-cccc');
    const byDays = await apply();
    expect(byDays.code).toBe(0);
    const afterDays = await kept();
    expect(afterDays).not.toContain(runs.first);
    expect(afterDays).toEqual(expect.arrayContaining([runs.change, runs.rollback, runs.again, runIdOf(byDays)]));

    await setVars({ ssh_max_auth_tries: 4, bastion_max_sessions: 7, infra_keep_runs: 2 }, 'fourth-SECRET-dddd');
    const byCount = await apply();
    expect(byCount.code).toBe(0);
    expect(await kept()).toEqual([runIdOf(byDays), runIdOf(byCount)].sort());
  }, TIMEOUT);
});
