import type { Command } from 'commander';
import { EXIT } from '../errors.js';
import { adhocOptions, adhocRequest } from './options.js';

export function register(program: Command): void {
  adhocOptions(program.command('facts').description('gather and print facts of hosts'), 'print JSON instead of a table')
    .action(async (o) => {
      const { factsOfHosts } = await import('../engine/adhoc.js');
      const facts = await factsOfHosts(adhocRequest(o));
      if (o.json) {
        process.stdout.write(JSON.stringify(facts, null, 2) + '\n');
      } else {
        for (const [host, f] of Object.entries(facts)) {
          if ('error' in f) {
            process.stdout.write(`${host}: unreachable: ${f.error}\n`);
            continue;
          }
          process.stdout.write(
            `${host}: ${f.os.prettyName} (${f.arch}), ${f.cpus} cpu, ${f.memoryMb} MB, ${f.ipv4 ?? '-'}` +
              `${f.container !== 'none' ? `, container ${f.container}` : ''}, uid ${f.uid}\n`,
          );
        }
      }
      process.exitCode = Object.values(facts).some((f) => 'error' in f) ? EXIT.hostFailed : EXIT.ok;
    });
}
