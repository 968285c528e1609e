/**
 * A decrypted vault value. It stays marked: String(secret) and JSON give the mask, only
 * `reveal()` gives the value. Every revealed value is registered with the redactor so any
 * output path (TTY, plain, JSON, diffs, errors, plan files, audit) can mask it even after it
 * was templated into a larger string.
 */
export const MASK = '********';

const registry = new Set<string>();

export class Secret {
  readonly #value: string;
  constructor(value: string, readonly label = 'secret') {
    this.#value = value;
    if (value.length >= 3) registry.add(value);
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
  if (value.length >= 3) registry.add(value);
}

/** Masks every registered secret value in a piece of output. Longest first. */
export function redact(text: string): string {
  if (registry.size === 0 || !text) return text;
  let out = text;
  for (const v of [...registry].sort((a, b) => b.length - a.length)) {
    if (out.includes(v)) out = out.split(v).join(MASK);
  }
  return out;
}

/** Deep copy of a value with every Secret replaced by its mask (for JSON output). */
export function redactDeep<T>(value: T): T {
  return JSON.parse(redact(JSON.stringify(value ?? null))) as T;
}
