/**
 * A role's variables reference, read from its zod schema: each variable (and each field of a
 * nested object or list of objects: `firewall.allow[].port`) with its type in words, its
 * default, and the text the schema gives with `.describe()`.
 */
import { z } from 'zod';

export interface VarRow {
  /** "ssh_port", "firewall.allow[].from". */
  path: string;
  type: string;
  /** The default as YAML-ish inline text; "required" or "none" without one. */
  default: string;
  description: string;
}

export function schemaRows(schema: z.ZodTypeAny): VarRow[] {
  const rows: VarRow[] = [];
  const top = unwrap(schema).schema;
  for (const [name, field] of Object.entries(fieldsOf(top))) addRows(rows, name, field);
  return rows;
}

function addRows(rows: VarRow[], path: string, schema: z.ZodTypeAny): void {
  const u = unwrap(schema);
  rows.push({
    path,
    type: typeText(u.schema) + (u.nullable ? ', or null' : ''),
    default: u.hasDefault ? inline(u.default) : u.optional ? 'none' : 'required',
    description: u.description ?? '',
  });
  // Fields of an object, or of the objects a list holds.
  const inner = unwrap(u.schema instanceof z.ZodArray ? u.schema.element : u.schema).schema;
  const prefix = u.schema instanceof z.ZodArray ? `${path}[]` : path;
  for (const [name, field] of Object.entries(fieldsOf(inner))) addRows(rows, `${prefix}.${name}`, field);
}

function fieldsOf(s: z.ZodTypeAny): Record<string, z.ZodTypeAny> {
  if (s instanceof z.ZodObject) return s.shape as Record<string, z.ZodTypeAny>;
  if (s instanceof z.ZodIntersection) return { ...fieldsOf(unwrap(s._def.left).schema), ...fieldsOf(unwrap(s._def.right).schema) };
  return {};
}

interface Unwrapped {
  schema: z.ZodTypeAny;
  optional: boolean;
  nullable: boolean;
  hasDefault: boolean;
  default?: unknown;
  description?: string;
}

/** Peels defaults, optionals, refinements and the like off a schema, keeping what they say. */
function unwrap(schema: z.ZodTypeAny): Unwrapped {
  const u: Unwrapped = { schema, optional: false, nullable: false, hasDefault: false };
  for (;;) {
    const s = u.schema;
    u.description ??= s.description;
    if (s instanceof z.ZodDefault) {
      if (!u.hasDefault) u.default = s._def.defaultValue();
      u.hasDefault = true;
      u.schema = s._def.innerType;
    } else if (s instanceof z.ZodOptional) {
      u.optional = true;
      u.schema = s._def.innerType;
    } else if (s instanceof z.ZodNullable) {
      u.nullable = true;
      u.schema = s._def.innerType;
    } else if (s instanceof z.ZodEffects) u.schema = s._def.schema;
    else if (s instanceof z.ZodBranded) u.schema = s._def.type;
    else if (s instanceof z.ZodCatch || s instanceof z.ZodReadonly) u.schema = s._def.innerType;
    else if (s instanceof z.ZodPipeline) u.schema = s._def.in;
    else if (s instanceof z.ZodLazy) u.schema = s._def.getter();
    else return u;
  }
}

/** The type in words: "integer 1–65535", "list of strings", "`tcp` | `udp`". */
export function typeText(schema: z.ZodTypeAny): string {
  const s = unwrap(schema).schema;
  if (s instanceof z.ZodString) return stringText(s);
  if (s instanceof z.ZodNumber) return numberText(s);
  if (s instanceof z.ZodBoolean) return 'boolean';
  if (s instanceof z.ZodLiteral) return `\`${String(s._def.value)}\``;
  if (s instanceof z.ZodEnum) return (s._def.values as string[]).map((v) => `\`${v}\``).join(' | ');
  if (s instanceof z.ZodNativeEnum) return Object.values(s._def.values as Record<string, string | number>).filter((v) => typeof v === 'string' || typeof v === 'number').map((v) => `\`${v}\``).join(' | ');
  if (s instanceof z.ZodUnion || s instanceof z.ZodDiscriminatedUnion) return (s.options as z.ZodTypeAny[]).map(typeText).join(', or ');
  if (s instanceof z.ZodArray) {
    const min = s._def.minLength?.value ?? 0;
    return `${min > 0 ? 'non-empty ' : ''}list of ${plural(grouped(typeText(s.element)))}`;
  }
  if (s instanceof z.ZodObject || s instanceof z.ZodIntersection) {
    const keys = Object.keys(fieldsOf(s));
    return keys.length ? `object {${keys.join(', ')}}` : 'object';
  }
  if (s instanceof z.ZodRecord) return `mapping of string → ${grouped(typeText(s._def.valueType))}`;
  if (s instanceof z.ZodTuple) return `[${(s._def.items as z.ZodTypeAny[]).map(typeText).join(', ')}]`;
  if (s instanceof z.ZodNull) return 'null';
  if (s instanceof z.ZodAny || s instanceof z.ZodUnknown) return 'any value';
  return s._def.typeName.replace(/^Zod/, '').toLowerCase();
}

function stringText(s: z.ZodString): string {
  const parts: string[] = [];
  let min: number | undefined;
  let max: number | undefined;
  for (const c of s._def.checks) {
    if (c.kind === 'min') min = c.value;
    else if (c.kind === 'max') max = c.value;
    else if (c.kind === 'length') min = max = c.value;
    else if (c.kind === 'regex') parts.push(`matching \`${c.regex.source}\``);
    else if (c.kind === 'url' || c.kind === 'email' || c.kind === 'uuid' || c.kind === 'ip' || c.kind === 'datetime') parts.push(`(${c.kind === 'url' ? 'a URL' : c.kind})`);
  }
  const size = min !== undefined && max !== undefined ? (min === max ? `of ${min} characters` : `of ${min}–${max} characters`) : min ? (min === 1 ? 'non-empty' : `of at least ${min} characters`) : max !== undefined ? `of at most ${max} characters` : '';
  return [size === 'non-empty' ? 'non-empty string' : 'string', size !== 'non-empty' ? size : '', ...parts].filter(Boolean).join(' ');
}

function numberText(s: z.ZodNumber): string {
  let min: { value: number; inclusive: boolean } | undefined;
  let max: { value: number; inclusive: boolean } | undefined;
  let int = false;
  for (const c of s._def.checks) {
    if (c.kind === 'int') int = true;
    else if (c.kind === 'min') min = c;
    else if (c.kind === 'max') max = c;
  }
  const base = int ? 'integer' : 'number';
  if (min && max && min.inclusive && max.inclusive) return `${base} ${min.value}–${max.value}`;
  const bounds = [min ? `${min.inclusive ? '≥' : '>'} ${min.value}` : '', max ? `${max.inclusive ? '≤' : '<'} ${max.value}` : ''].filter(Boolean);
  return [base, ...bounds].join(' ');
}

/** A union inside a list or mapping, in parentheses: "list of (integers, or strings)". */
function grouped(text: string): string {
  return text.includes(', or ') ? `(${text})` : text;
}

/** "string …" → "strings …" for the words a list holds. */
function plural(text: string): string {
  return text.replace(/(^|, or |\()(non-empty )?(string|integer|number|boolean|object)\b/g, (_m, lead: string, ne: string | undefined, w: string) => `${lead}${ne ?? ''}${w}s`);
}

/** A default as it would be written in YAML flow style: `22`, `[a, b]`, `{}`. */
export function inline(v: unknown): string {
  if (v === undefined) return 'none';
  if (v === null) return 'null';
  if (typeof v === 'string') return v === '' ? '""' : v;
  if (Array.isArray(v)) return `[${v.map(inline).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}: ${inline(x)}`).join(', ')}}`;
  return String(v);
}
