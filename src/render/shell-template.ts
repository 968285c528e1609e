/**
 * Templates in shell fields (a YAML task's `cmd`, `unless`, `onlyIf`, `validate`): every
 * `{{…}}` is inserted as ONE quoted shell word, whatever the value holds (`'`, `$(…)`, a
 * newline). `{{quote x}}` is already one word; `{{raw x}}` splices shell syntax on purpose.
 *
 * Quoting is only right where a word starts or continues unquoted, so the literal text
 * around each `{{…}}` is scanned like the shell would: one inside '…' or "…", after a
 * backslash, in a comment or in a here-document is refused (inside '…' the quoted value
 * would even come out unquoted). Those are input errors, found before connecting.
 */
import type { HelperOptions } from 'handlebars';
import { quote } from '../shell/quote.js';

/** The block helper that wraps each `{{…}}` of a shell field: quotes what its body printed. */
export const SHELL_WORD_HELPER = 'infraShellWord';

export function shellWord(this: unknown, options: HelperOptions): string {
  return quote(options.fn(this));
}

/** Helpers whose output is left as is: already quoted, or spliced on purpose. */
const UNWRAPPED = new Set(['quote', 'raw']);

export class ShellTemplateError extends Error {
  constructor(
    message: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
  }
}

export const SHELL_HINT =
  'in cmd/unless/onlyIf/validate a {{…}} is quoted for you: write it bare (`echo {{vars.x}}`, not `echo "{{vars.x}}"`); ' +
  '{{raw vars.x}} splices shell syntax unquoted';

interface ScanState {
  quote: 'none' | 'single' | 'double';
  escaped: boolean;
  comment: boolean;
  heredoc: boolean;
  /** The next character starts a word (a `#` there opens a comment). */
  wordStart: boolean;
}

type Node = hbs.AST.Node & { loc?: hbs.AST.SourceLocation };

/**
 * Checks that every `{{…}}` of a parsed shell-field template stands where a quoted word is
 * safe, and rewrites the program so each one prints its value through SHELL_WORD_HELPER.
 * Throws ShellTemplateError (with the position in the template) on the first problem.
 */
export function quoteShellTemplate(program: hbs.AST.Program): hbs.AST.Program {
  const state: ScanState = { quote: 'none', escaped: false, comment: false, heredoc: false, wordStart: true };
  visitProgram(program, state);
  return program;
}

function visitProgram(program: hbs.AST.Program, state: ScanState): void {
  program.body = program.body.map((node) => visit(node as Node, state));
}

function visit(node: Node, state: ScanState): hbs.AST.Statement {
  switch (node.type) {
    case 'ContentStatement':
      scan((node as hbs.AST.ContentStatement).value, state);
      return node;
    case 'MustacheStatement': {
      const m = node as hbs.AST.MustacheStatement;
      const helper = m.path.type === 'PathExpression' && m.params.length > 0 ? (m.path as hbs.AST.PathExpression).original : undefined;
      if (helper === 'raw') return m; // the author's own shell text: nothing to check or quote
      refuseHere(state, m);
      state.wordStart = false;
      return helper && UNWRAPPED.has(helper) ? m : wrap(m);
    }
    case 'BlockStatement': {
      const b = node as hbs.AST.BlockStatement;
      // {{#if}}…{{else}}…{{/if}}, {{#each}}…{{/each}}: each branch must close the quotes it opens.
      const after = [b.program, b.inverse].filter(Boolean).map((p) => {
        const branch = { ...state };
        visitProgram(p, branch);
        if (branch.quote !== state.quote || branch.escaped !== state.escaped || branch.comment !== state.comment) {
          throw new ShellTemplateError(`quotes opened inside {{#${b.path.original}}} must be closed inside it`, b.loc?.start.line, b.loc?.start.column);
        }
        return branch;
      });
      state.heredoc ||= after.some((s) => s.heredoc);
      state.wordStart = false;
      return b;
    }
    case 'PartialStatement':
    case 'PartialBlockStatement':
      throw new ShellTemplateError('partials cannot be used in a shell field', node.loc?.start.line, node.loc?.start.column);
    default:
      return node as hbs.AST.Statement; // comments {{! }}: nothing printed
  }
}

function refuseHere(state: ScanState, m: Node): void {
  const problem =
    state.quote !== 'none'
      ? `{{…}} inside ${state.quote === 'single' ? "'…'" : '"…"'}: in a shell field its value is already quoted`
      : state.escaped
        ? '{{…}} right after a backslash: the backslash would undo its quoting'
        : state.comment
          ? '{{…}} in a shell comment: a newline in its value would end the comment'
          : state.heredoc
            ? '{{…}} in a here-document: the shell does not quote there (write the file with files.file or files.template)'
            : undefined;
  if (problem) throw new ShellTemplateError(problem, m.loc?.start.line, m.loc?.start.column);
}

/** Advances the shell's view of the literal text: quotes, backslashes, comments, `<<`. */
function scan(text: string, s: ScanState): void {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (s.quote === 'single') {
      if (c === "'") s.quote = 'none';
    } else if (s.quote === 'double') {
      if (s.escaped) s.escaped = false;
      else if (c === '\\') s.escaped = true;
      else if (c === '"') s.quote = 'none';
    } else if (s.comment) {
      if (c === '\n') s.comment = false;
    } else if (s.escaped) {
      s.escaped = false;
    } else if (c === '\\') {
      s.escaped = true;
    } else if (c === "'") {
      s.quote = 'single';
    } else if (c === '"') {
      s.quote = 'double';
    } else if (c === '#' && s.wordStart) {
      s.comment = true;
    } else if (c === '<' && text[i + 1] === '<') {
      s.heredoc = true;
    }
    s.wordStart = s.quote === 'none' && !s.escaped && /[\s;&|()<>]/.test(c);
  }
}

/** `{{x}}` → `{{#infraShellWord}}{{x}}{{/infraShellWord}}`: the lookup (and its strict-mode error) stays as written. */
function wrap(m: hbs.AST.MustacheStatement): hbs.AST.BlockStatement {
  const noStrip = { open: false, close: false };
  return {
    type: 'BlockStatement',
    path: { type: 'PathExpression', data: false, depth: 0, parts: [SHELL_WORD_HELPER], original: SHELL_WORD_HELPER, loc: m.loc },
    params: [],
    hash: undefined as unknown as hbs.AST.Hash,
    program: { type: 'Program', body: [m], blockParams: [], loc: m.loc },
    inverse: undefined as unknown as hbs.AST.Program,
    openStrip: noStrip,
    inverseStrip: noStrip,
    closeStrip: noStrip,
    loc: m.loc,
  };
}
