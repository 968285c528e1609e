/**
 * Two kinds of error (ARCHITECTURE "Style" 5):
 *  - UserError: bad input. Message names file:line:col and carries a hint. Exit code 2.
 *  - anything else is a bug: printed with its stack, exit code 70.
 * Unreachable hosts and failed tasks are results, never exceptions.
 */
export interface SourcePos {
  file: string;
  line?: number; // 1-based
  col?: number; // 1-based
}

export class UserError extends Error {
  readonly pos?: SourcePos;
  readonly hint?: string;
  readonly exitCode = 2;
  constructor(message: string, opts: { pos?: SourcePos; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause ? { cause: opts.cause } : undefined);
    this.name = 'UserError';
    this.pos = opts.pos;
    this.hint = opts.hint;
  }
  /** "file:line:col: message\n  hint: ..." */
  format(): string {
    const where = this.pos ? `${formatPos(this.pos)}: ` : '';
    return `${where}${this.message}${this.hint ? `\n  hint: ${this.hint}` : ''}`;
  }
}

/** Several input errors reported together (all of them, not just the first). */
export class UserErrors extends UserError {
  readonly errors: UserError[];
  constructor(errors: UserError[]) {
    super(`${errors.length} error(s) in the input`);
    this.errors = errors;
  }
  override format(): string {
    return this.errors.map((e) => e.format()).join('\n');
  }
}

export function formatPos(p: SourcePos): string {
  return `${p.file}${p.line ? `:${p.line}` : ''}${p.line && p.col ? `:${p.col}` : ''}`;
}

export const EXIT = {
  ok: 0,
  hostFailed: 1,
  badInput: 2,
  changesPending: 3,
  bug: 70,
  interrupted: 130,
} as const;

/** The message of anything thrown (an Error's message, or the value as text). */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Levenshtein-based suggestion for "did you mean" hints. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}
