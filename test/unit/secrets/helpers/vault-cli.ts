/** Runs `infra vault ...` in a child process (real stdin, env, editor) without the rest of the CLI. */
import { Command } from 'commander';
import { register } from '../../../../src/cli/vault.js';
import { UserError } from '../../../../src/errors.js';
import { redact } from '../../../../src/secrets/secret.js';

const program = new Command('infra').exitOverride();
register(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof UserError) {
    process.stderr.write(redact(`error: ${e.format()}`) + '\n');
    process.exit(2);
  }
  if (e && typeof e === 'object' && 'exitCode' in e) process.exit(Number((e as { exitCode: number }).exitCode));
  throw e;
}
