/** Runs `infra audit ...` in a child process without the rest of the CLI. */
import { Command } from 'commander';
import { register } from '../../../../src/cli/audit.js';

const program = new Command('infra').exitOverride();
register(program);
await program.parseAsync(process.argv);
