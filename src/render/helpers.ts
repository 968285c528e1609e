/**
 * The small helper set templates may use. Helpers receive missing variables as undefined
 * (handlebars' strict mode only checks plain {{path}} lookups), so the ones that need a
 * value refuse undefined themselves instead of rendering "undefined" into a config file.
 */
import Handlebars, { type HelperDelegate, type HelperOptions } from 'handlebars';
import { quote } from '../shell/quote.js';
import { addSecretForm } from '../secrets/secret.js';

// Helpers that transform a string print a secret in a form redact() must know (quote's form
// is registered by shell/quote.ts; json's escaping by the redactor itself).
addSecretForm((v) => v.toUpperCase());
addSecretForm((v) => v.toLowerCase());

type Args = unknown[];

/** Handlebars passes its options object last; split it off. */
function split(args: Args): { values: unknown[]; options: HelperOptions } {
  return { values: args.slice(0, -1), options: args[args.length - 1] as HelperOptions };
}

function required(helper: string, values: unknown[], count: number): void {
  if (values.length < count) throw new Error(`helper "${helper}" needs ${count} argument(s), got ${values.length}`);
  values.slice(0, count).forEach((v, i) => {
    if (v === undefined) throw new Error(`helper "${helper}": argument ${i + 1} is undefined (a missing variable?)`);
  });
}

function indentText(text: string, n: number): string {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((line) => (line === '' ? line : pad + line))
    .join('\n');
}

function asArray(helper: string, v: unknown): unknown[] {
  if (!Array.isArray(v)) throw new Error(`helper "${helper}": expected a list, got ${v === null ? 'null' : typeof v}`);
  return v;
}

const plainHelpers: Record<string, HelperDelegate> = {
  /** {{json value}} or {{json value 2}} (indent). */
  json(...args: Args) {
    const { values } = split(args);
    required('json', values, 1);
    const indent = typeof values[1] === 'number' ? values[1] : undefined;
    return JSON.stringify(values[0], null, indent);
  },
  /** {{join list ", "}} — separator defaults to ", ". */
  join(...args: Args) {
    const { values } = split(args);
    required('join', values, 1);
    const sep = values[1] === undefined ? ', ' : String(values[1]);
    return asArray('join', values[0]).map(String).join(sep);
  },
  /** {{indent 4 text}} or {{#indent 4}}block{{/indent}}: prefixes every non-empty line. */
  indent(this: unknown, ...args: Args) {
    const { values, options } = split(args);
    required('indent', values, 1);
    const n = Number(values[0]);
    if (!Number.isInteger(n) || n < 0) throw new Error(`helper "indent": width must be a whole number, got ${String(values[0])}`);
    if (values.length >= 2) {
      required('indent', values, 2);
      return indentText(String(values[1]), n);
    }
    if (typeof options.fn !== 'function') throw new Error('helper "indent" needs a text argument or a block');
    return indentText(options.fn(this), n);
  },
  /** {{default value "fallback"}}: the fallback when value is undefined, null or "". */
  default(...args: Args) {
    const { values } = split(args);
    if (values.length < 2) throw new Error('helper "default" needs 2 arguments: value and fallback');
    const [v, fallback] = values;
    return v === undefined || v === null || v === '' ? fallback : v;
  },
  eq: (...args: Args) => {
    const { values } = split(args);
    return values[0] === values[1];
  },
  ne: (...args: Args) => {
    const { values } = split(args);
    return values[0] !== values[1];
  },
  lt: (...args: Args) => compare('lt', args, (a, b) => a < b),
  gt: (...args: Args) => compare('gt', args, (a, b) => a > b),
  lte: (...args: Args) => compare('lte', args, (a, b) => a <= b),
  gte: (...args: Args) => compare('gte', args, (a, b) => a >= b),
  and: (...args: Args) => {
    const { values } = split(args);
    return values.every(Boolean);
  },
  or: (...args: Args) => {
    const { values } = split(args);
    return values.some(Boolean);
  },
  not: (...args: Args) => {
    const { values } = split(args);
    return !values[0];
  },
  upper: (...args: Args) => {
    const { values } = split(args);
    required('upper', values, 1);
    return String(values[0]).toUpperCase();
  },
  lower: (...args: Args) => {
    const { values } = split(args);
    required('lower', values, 1);
    return String(values[0]).toLowerCase();
  },
  /** {{quote value}}: POSIX shell quoting, for templated scripts. */
  quote: (...args: Args) => {
    const { values } = split(args);
    required('quote', values, 1);
    const v = values[0];
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`helper "quote": expected a string or number, got ${typeof v}`);
    return quote(v);
  },
  /**
   * {{raw value}}: the value as is. In a shell field (cmd, unless, onlyIf, validate), where
   * every other {{…}} is quoted, it splices shell syntax on purpose; elsewhere it changes nothing.
   */
  raw: (...args: Args) => {
    const { values } = split(args);
    required('raw', values, 1);
    return String(values[0]);
  },
  /** {{#if (includes list item)}}. */
  includes: (...args: Args) => {
    const { values } = split(args);
    required('includes', values, 1);
    return asArray('includes', values[0]).includes(values[1]);
  },
};

function compare(name: string, args: Args, op: (a: number | string, b: number | string) => boolean): boolean {
  const { values } = split(args);
  required(name, values, 2);
  const [a, b] = values;
  const ok = (x: unknown) => typeof x === 'number' || typeof x === 'string';
  if (!ok(a) || !ok(b)) throw new Error(`helper "${name}": compares numbers or strings`);
  return op(a as number | string, b as number | string);
}

/** A helper's error with the template position handlebars gave the call (1-based line, 0-based column). */
export class HelperError extends Error {
  constructor(message: string, readonly line?: number, readonly column?: number) {
    super(message);
  }
}

function withPosition(fn: HelperDelegate): HelperDelegate {
  return function (this: unknown, ...args: Args) {
    try {
      return fn.apply(this, args as Parameters<HelperDelegate>);
    } catch (e) {
      // Errors from a block's own body (strict lookups) already carry their position.
      if (e instanceof HelperError || e instanceof Handlebars.Exception || !(e instanceof Error)) throw e;
      const loc = (args[args.length - 1] as { loc?: { start?: { line: number; column: number } } } | undefined)?.loc;
      throw new HelperError(e.message, loc?.start?.line, loc?.start?.column);
    }
  };
}

export const helpers: Record<string, HelperDelegate> = Object.fromEntries(
  Object.entries(plainHelpers).map(([name, fn]) => [name, withPosition(fn)]),
);
