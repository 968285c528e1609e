/**
 * `infra drill NAME -i ENV`: a recovery drill against an environment, from arguments to exit code.
 *
 *   1. input (no network): inventory, the drill's hosts, the objectives (dr_objectives)
 *   2. one RunSession (run lock on every host it touches, Ctrl-C, recap, audit record mode
 *      'drill'): each step is a task result, so the audit trail keeps what the drill did and
 *      what it measured
 *   3. the drill: load marker, disaster, recovery; RTO and RPO measured
 *   4. the verdict against the objectives: exit 0 when both are met, 1 when one is missed or
 *      the drill failed
 */
import { UserError, EXIT, messageOf } from '../errors.js';
import { forEachLimit } from '../engine/batches.js';
import { loadInventoryFor } from '../engine/input.js';
import { RunSession } from '../engine/session.js';
import { connectHost } from '../engine/host-run.js';
import type { AdhocRequest } from '../engine/adhoc.js';
import type { RunControl } from '../engine/control.js';
import { redact } from '../secrets/secret.js';
import { DRILLS, drillNamed } from './index.js';
import { judge, objectivesOf, verdictLines } from './objectives.js';
import type { DrillContext } from './types.js';

export interface DrillRequest extends AdhocRequest {
  drill: string;
  lockWaitMs: number;
  control: RunControl;
}

export async function runDrill(req: DrillRequest): Promise<number> {
  const drill = drillNamed(req.drill);
  if (!drill) throw new UserError(`no drill named "${req.drill}"`, { hint: `drills: ${DRILLS.map((d) => d.name).join(', ')}` });
  const inventory = await loadInventoryFor(req);
  const hosts = drill.hosts(inventory, req.limit ? [req.limit] : []);
  const objectives = objectivesOf(inventory.hosts.get(hosts[0])!.vars, hosts[0]);

  const session = new RunSession({ ...req, inventory, hosts, mode: 'drill', diff: false });
  const lock = { meta: session.lockMeta(), waitMs: req.lockWaitMs };
  const subject = hosts[0];
  const task = (host: string, what: string, status: 'ok' | 'changed' | 'failed', error?: string) => {
    session.reporter.emit({ type: 'task.result', host, task: what, module: `drill.${drill.name}`, status, changes: [], ...(error ? { error: redact(error) } : { reason: what }), ms: 0 });
    session.hosts.get(host).count(status, what);
  };
  return session.guard(async () => {
    session.start();
    session.reporter.emit({ type: 'play.start', play: `drill ${drill.name}: ${drill.describe}`, hosts });
    await forEachLimit(hosts, req.forks, async (host) => {
      await connectHost(session.hosts.get(host), { transports: session.pool, reporter: session.reporter, lock });
    });
    let exitCode: number = EXIT.ok;
    const down = hosts.filter((h) => session.hosts.get(h).down);
    if (down.length) {
      exitCode = EXIT.hostFailed;
    } else {
      const ctx: DrillContext = {
        inventory,
        hosts,
        runId: session.runId,
        run: (host, cmd, o) => session.pool.get(host).run(cmd, o),
        put: (host, path, bytes, o) => session.pool.get(host).put(path, bytes, o),
        step: (host, what, acted) => task(host, what, acted ? 'changed' : 'ok'),
      };
      try {
        const measured = await drill.run(ctx);
        const verdict = judge(measured, objectives);
        const lines = [...verdictLines(measured, objectives, verdict), ...measured.notes.map((n) => `note: ${n}`)];
        for (const line of lines) process.stderr.write(`drill ${drill.name}: ${line}\n`);
        // The measurement is a result of the subject host: it goes to the audit trail with the steps.
        task(subject, `measured: ${lines[0]}; ${lines[1]}`, verdict.met ? 'ok' : 'failed', verdict.met ? undefined : `objectives missed: ${lines.filter((l) => l.includes('MISSED')).join('; ')}`);
        if (!verdict.met) exitCode = EXIT.hostFailed;
      } catch (e) {
        task(subject, `drill ${drill.name}`, 'failed', messageOf(e));
        exitCode = EXIT.hostFailed;
      }
    }
    for (const h of hosts) session.hosts.get(h).finish();
    if (req.control.stopping) exitCode = EXIT.interrupted;
    await session.end({ exitCode, aborted: req.control.aborted, recordOn: hosts });
    return exitCode;
  });
}
