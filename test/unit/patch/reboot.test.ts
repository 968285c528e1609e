/** What follows the upgrade: a reboot, service restarts instead, or nothing — and what the report says. */
import { describe, it, expect } from 'vitest';
import { decideReboot, type RebootInput } from '../../../src/patch/reboot.js';

const base: RebootInput = { mode: 'auto', required: [], container: 'none', carriesRun: false, restartServices: true };

describe('decideReboot', () => {
  it.each<[string, Partial<RebootInput>, string, RegExp | undefined]>([
    ['auto, nothing asks for it: restart the upgraded services', {}, 'restart-services', undefined],
    ['auto, a kernel asks for it: reboot', { required: ['linux-image-amd64'] }, 'reboot', undefined],
    ['always: reboot', { mode: 'always' }, 'reboot', undefined],
    ['never, required: no reboot, said so', { mode: 'never', required: ['libc6'] }, 'restart-services', /reboot required \(libc6\): not rebooted \(reboot: never\)/],
    ['a container: cannot reboot, services restarted instead', { container: 'docker', required: ['libc6'] }, 'restart-services', /reboot required \(libc6\): a container cannot reboot; its upgraded services were restarted instead/],
    ['a container, always: still cannot', { container: 'lxc', mode: 'always' }, 'restart-services', /reboot asked \(reboot: always\): a container cannot reboot/],
    ['a container, restart_services false: nothing, said so', { container: 'docker', required: ['x'], restartServices: false }, 'none', /nothing restarted \(restart_services: false\)/],
    ['the bastion carrying the run, always: never rebooted', { carriesRun: true, mode: 'always', required: ['linux-image-amd64'] }, 'restart-services', /not rebooted — it carries this run's connections; reboot it by hand after the run/],
  ])('%s', (_, input, action, note) => {
    const d = decideReboot({ ...base, ...input });
    expect(d.action).toBe(action);
    if (note) expect(d.note).toMatch(note);
    else expect(d.note).toBeUndefined();
  });
});
