import type { Command } from 'commander';
import { inventoryOption, collect } from './options.js';

export function register(program: Command): void {
  inventoryOption(
    program
      .command('explain')
      .description("show a variable's value at every precedence level, with file:line")
      .argument('<var>', 'variable name'),
  )
    .requiredOption('--host <host>', 'the host')
    .option('--role <role>', "include this role's default")
    .option('--playbook <file>', 'include play vars from this playbook')
    .option('-e, --extra-vars <vars>', 'key=value, JSON, or @file.yaml', collect, [])
    .action(async (name: string, o) => {
      const { explainVariable } = await import('../engine/explain.js');
      process.stdout.write(
        await explainVariable({
          cwd: process.cwd(),
          inventory: o.inventory,
          vaultPasswordFile: o.vaultPasswordFile,
          host: o.host,
          name,
          role: o.role,
          playbook: o.playbook,
          extraVars: o.extraVars,
        }),
      );
    });
}
