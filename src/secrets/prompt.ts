/**
 * Asks for a vault password on the terminal without echo. TTY only: a password is never
 * read from a pipe by surprise (use --vault-password-file or --stdin for that).
 */
import { UserError } from '../errors.js';

export interface PromptStreams {
  input: NodeJS.ReadStream;
  output: NodeJS.WriteStream;
}

export function canPrompt(io: PromptStreams = { input: process.stdin, output: process.stderr }): boolean {
  return !!io.input.isTTY && typeof io.input.setRawMode === 'function';
}

/** Reads one line with echo off. Ctrl-C / Ctrl-D abort with a UserError. */
export function promptHidden(question: string, io: PromptStreams = { input: process.stdin, output: process.stderr }): Promise<string> {
  if (!canPrompt(io)) {
    return Promise.reject(
      new UserError('no vault password given and this is not a terminal to ask on', {
        hint: 'pass --vault-password-file FILE (or id@FILE), or set INFRA_VAULT_PASSWORD_FILE',
      }),
    );
  }
  const { input, output } = io;
  output.write(question);
  return new Promise((resolve, reject) => {
    let answer = '';
    const wasRaw = input.isRaw;
    input.setRawMode(true);
    input.resume();
    input.setEncoding('utf8');
    const finish = (err?: Error) => {
      input.off('data', onData);
      input.setRawMode(wasRaw);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(answer);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003' || ch === '\u0004') return finish(new UserError('vault password prompt aborted'));
        if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1);
        else if (ch >= ' ') answer += ch;
      }
    };
    input.on('data', onData);
  });
}

/** The prompt used by the CLI: "Vault password (prod): ". */
export function ttyPrompt(id: string): Promise<string> {
  return promptHidden(`Vault password (${id}): `);
}
