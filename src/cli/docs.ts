import { relative } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { commandLine, positiveInt } from './options.js';

export function register(program: Command): void {
  const docs = program
    .command('docs')
    .description('generate docs from the inventory, playbook and roles: network diagram, firewall matrix, inventory page (docs roles: the roles\' variables)')
    .option('-i, --inventory <env|path>', 'inventory: an environment under inventories/ or a path')
    .option('--out <dir>', 'output directory (default docs/<inventory name>, or docs/roles)')
    .option('--playbook <file>', 'the playbook whose plays say which roles each host gets', 'playbooks/site.yaml')
    .option('--facts', 'connect to the hosts (read-only) for OS, kernel and key package versions')
    .option('--vault-password-file <file>', 'vault password file (only --facts connects, and may need one)')
    .option('--accept-new', 'with --facts: record unknown host keys')
    .option('--forks <n>', 'with --facts: hosts in parallel', positiveInt, 50)
    .action(async (o) => {
      if (!o.inventory) throw new UserError('infra docs needs an inventory', { hint: 'infra docs -i ENV (the environment\'s docs), or infra docs roles (the roles\' variables reference)' });
      // Loaded here, not at start-up: the other commands never pay for the docs (nor Graphviz).
      const { writeEnvDocs } = await import('../docs/generate.js');
      const facts = o.facts ? { vaultPasswordFile: o.vaultPasswordFile, forks: o.forks, acceptNew: !!o.acceptNew, json: false, commandLine: commandLine() } : undefined;
      report(await writeEnvDocs({ cwd: process.cwd(), inventory: o.inventory, out: o.out, playbook: o.playbook, facts }));
    });
  docs
    .command('roles')
    .description('the variables reference of every role, from its zod schema (default docs/roles)')
    .action(async (_o, cmd: Command) => {
      const { writeRoleDocs } = await import('../docs/generate.js');
      report(await writeRoleDocs({ cwd: process.cwd(), out: cmd.parent!.opts().out }));
    });
}

function report(w: { dir: string; files: string[] }): void {
  const rel = relative(process.cwd(), w.dir);
  const dir = rel === '' ? '.' : rel.startsWith('..') ? w.dir : rel;
  process.stdout.write(`wrote ${w.files.length} files to ${dir}: ${w.files.join(', ')}\n`);
}
