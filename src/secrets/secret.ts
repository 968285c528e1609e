/**
 * A decrypted vault value. It stays marked: String(secret) and JSON give the mask, only
 * `reveal()` gives the value. Every revealed value is registered with the redactor so any
 * output path (TTY, plain, JSON, diffs, errors, plan files, audit) can mask it even after it
 * was templated into a larger string.
 *
 * Values shorter than MIN_SECRET_LENGTH are not registered: masking every "a" or "on" in all
 * output would wreck it. The vault refuses to encrypt such values (see vault.ts), so they
 * only reach here from elsewhere (a Secret built in code), where the Secret wrapper itself
 * still masks them; once revealed into a larger string they are not masked.
 */
export const MASK = '********';

/** Shortest value the redactor masks (and the vault agrees to encrypt). */
export const MIN_SECRET_LENGTH = 3;

/** Every value registered, as given (to derive forms added later). */
const values = new Set<string>();
/** What redact() masks: each value in each of its output forms. */
const registry = new Set<string>();
let longestFirst: string[] | undefined;

/**
 * Transformations output paths apply to strings, besides JSON escaping: shell quoting
 * (shell/quote.ts), case-changing template helpers (render/helpers.ts). Whoever produces a
 * form registers it here, so every secret, earlier or later, is masked in that form too.
 */
const forms: Array<(value: string) => string> = [];

export function addSecretForm(form: (value: string) => string): void {
  forms.push(form);
  for (const v of values) addForms(v);
}

function register(value: string): void {
  if (value.length < MIN_SECRET_LENGTH) return; // nor its forms: quoted, "ab" would still mask every 'ab'
  values.add(value);
  addForms(value);
}

function addForms(value: string): void {
  const before = registry.size;
  for (const form of outputForms(value)) if (form.length >= MIN_SECRET_LENGTH) registry.add(form);
  if (registry.size !== before) longestFirst = undefined;
}

/**
 * The ways a value can show up in output: as is and in each registered form, each of them
 * also JSON-escaped (a secret with a quote or newline inside a JSON document); and, for a
 * multi-line value (a TLS key), each of its lines, since diffs and line-oriented output
 * show one line at a time.
 */
function outputForms(value: string): string[] {
  const shown = [value];
  for (const form of forms) {
    try {
      shown.push(form(value));
    } catch {
      // A form that cannot take this value (quote() refuses NUL) cannot produce it either.
    }
  }
  const out = shown.flatMap((v) => [v, JSON.stringify(v).slice(1, -1)]);
  if (/[\r\n]/.test(value)) out.push(...value.split(/\r?\n|\r/).map((l) => l.trim()));
  return out;
}

export class Secret {
  readonly #value: string;
  constructor(value: string, readonly label = 'secret') {
    this.#value = value;
    register(value);
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return MASK;
  }
  toJSON(): string {
    return MASK;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Secret(${MASK})`;
  }
}

export function isSecret(v: unknown): v is Secret {
  return v instanceof Secret;
}

/** Registers a value that must never appear in output (e.g. a sudo password). */
export function registerSecretValue(value: string): void {
  register(value);
}

/** Masks every registered secret value in a piece of output. Longest first. */
export function redact(text: string): string {
  if (registry.size === 0 || !text) return text;
  longestFirst ??= [...registry].sort((a, b) => b.length - a.length);
  let out = text;
  for (const v of longestFirst) {
    if (out.includes(v)) out = out.split(v).join(MASK);
  }
  return out;
}

/**
 * Whether a text (a rendered file) holds any registered secret, in any form. Such a file is
 * sensitive as a whole: its diff would show the lines around the secret, and after a rotation
 * the old value, which the redactor no longer knows.
 */
export function containsSecret(text: string | Buffer): boolean {
  if (registry.size === 0) return false;
  const s = typeof text === 'string' ? text : text.toString('utf8');
  for (const v of registry) if (s.includes(v)) return true;
  return false;
}

/**
 * Deep copy of a value (as JSON would carry it) with every Secret replaced by its mask and
 * every registered value masked inside strings. Strings are masked before JSON escapes them.
 */
export function redactDeep<T>(value: T): T {
  const text = JSON.stringify(value ?? null, (_k, v: unknown) => (typeof v === 'string' ? redact(v) : v));
  return JSON.parse(text) as T;
}
