import type { Command } from 'commander';
import { inventoryOption, collect } from './options.js';

export function register(program: Command): void {
  inventoryOption(
    program
      .command('check')
      .description('validate inventory, playbook, role variables and templates with no network')
      .argument('[playbook]', 'playbook YAML (default playbooks/site.yaml)'),
  )
    .option('-l, --limit <pattern>', 'hosts')
    .option('-e, --extra-vars <vars>', 'key=value, JSON, or @file.yaml', collect, [])
    .action(async (playbook: string | undefined, o) => {
      const { checkInput } = await import('../engine/validate.js');
      const summary = await checkInput({
        cwd: process.cwd(),
        inventory: o.inventory,
        playbook,
        limit: o.limit,
        extraVars: o.extraVars,
        vaultPasswordFile: o.vaultPasswordFile,
      });
      process.stdout.write(`ok: ${summary}\n`);
    });
}
