/**
 * The `infra` program: commander wiring only. Each command lives in its own file and
 * exports register(program); the work is done by the engine (a library).
 */
import { Command } from 'commander';
import { EXIT } from '../errors.js';
import { handleCrashes, onOutputError, reportError } from './process.js';
import { register as apply } from './apply.js';
import { register as plan } from './plan.js';
import { register as run } from './run.js';
import { register as exec } from './exec.js';
import { register as facts } from './facts.js';
import { register as inventory } from './inventory.js';
import { register as check } from './check.js';
import { register as explain } from './explain.js';
import { register as lab } from './lab.js';
import { register as vault } from './vault.js';
import { register as audit } from './audit.js';
import { register as pki } from './pki.js';
import { register as docs } from './docs.js';
import { register as patch } from './patch.js';
import { register as drill } from './drill.js';
import { register as history } from './history.js';
import { register as rollback } from './rollback.js';

export function buildProgram(): Command {
  const program = new Command('infra')
    .description('Agentless, typed configuration management over SSH')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  for (const reg of [apply, plan, run, exec, facts, inventory, check, explain, lab, vault, audit, pki, docs, patch, drill, history, rollback]) reg(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  handleCrashes();
  // `infra ... | head`: a closed pipe ends the output (and stops a run), not with a stack trace.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', onOutputError);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    return reportError(e);
  }
}
