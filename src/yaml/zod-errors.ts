/**
 * zod issues → UserErrors naming file:line:col, the key path, and a hint. Shared by the
 * inventory and playbook loaders (any YAML validated by a zod schema).
 */
import { z } from 'zod';
import { UserError, didYouMean } from '../errors.js';
import { isSecret } from '../secrets/secret.js';
import { formatPath, type YamlDoc, type YamlPath } from './positions.js';

export function zodErrors(error: z.ZodError, doc: YamlDoc, schema: z.ZodTypeAny, base: YamlPath = [], raw?: unknown): UserError[] {
  const out: UserError[] = [];
  for (const issue of error.issues) out.push(...issueErrors(issue, doc, schema, base, raw ?? valueAt(doc.value, base)));
  return out;
}

function issueErrors(issue: z.ZodIssue, doc: YamlDoc, schema: z.ZodTypeAny, base: YamlPath, raw: unknown): UserError[] {
  const rel = issue.path;
  const path = [...base, ...rel];
  const where = formatPath(path);
  if (issue.code === 'unrecognized_keys') {
    const allowed = shapeKeysAt(schema, rel);
    return issue.keys.map((key) => {
      const guess = didYouMean(key, allowed);
      return new UserError(`${where}: unknown key "${key}"${guess ? ` — did you mean "${guess}"?` : ''}`, {
        pos: doc.keyPos([...path, key]),
        hint: allowed.length ? `allowed here: ${allowed.join(', ')}` : undefined,
      });
    });
  }
  if (issue.code === 'invalid_union') {
    // Report the branch that got furthest, unless every branch failed on the type alone.
    const branches = issue.unionErrors.map((e) => e.issues);
    const deep = branches.find((b) => b.some((i) => i.path.length > rel.length || i.code === 'unrecognized_keys'));
    if (deep) return deep.flatMap((i) => issueErrors(i, doc, schema, base, raw));
  }
  if (issue.code === 'invalid_type' && issue.received === 'undefined') {
    const key = rel[rel.length - 1];
    return [
      new UserError(`${formatPath(path.slice(0, -1))}: missing required key "${String(key)}"`, {
        pos: doc.pos(path.slice(0, -1)),
        hint: `add ${String(key)}: <${issue.expected}>`,
      }),
    ];
  }
  const got = describeValue(valueAt(raw, rel));
  // zod's own invalid_type message is "Expected x, received y"; a schema's custom one is kept.
  const custom = issue.code === 'invalid_type' && !issue.message.startsWith('Expected ');
  const message =
    issue.code === 'invalid_type' && !custom
      ? `expected ${issue.expected}, got ${got}`
      : `${issue.message}${/\b(got|received)\b/.test(issue.message) ? '' : `, got ${got}`}`;
  return [new UserError(`${where}: ${message}`, { pos: doc.pos(path) })];
}

export function valueAt(root: unknown, path: YamlPath): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/** `string "abc"`, `number 22`, `a list`, `a mapping`, `null`: the "got" of an error. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (isSecret(v)) return 'a vault value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string "${v.length > 40 ? `${v.slice(0, 37)}...` : v}"`;
  return `${typeof v} ${String(v)}`;
}

/** The keys an object schema allows at `path` (through optional/default/record/array/effects). */
export function shapeKeysAt(schema: z.ZodTypeAny, path: ReadonlyArray<string | number>): string[] {
  let s: z.ZodTypeAny | undefined = schema;
  for (let i = 0; i <= path.length && s; i++) {
    s = unwrap(s);
    if (i === path.length) break;
    const seg = path[i];
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodTypeAny>)[String(seg)];
    else if (s instanceof z.ZodRecord) s = s.valueSchema as z.ZodTypeAny;
    else if (s instanceof z.ZodArray) s = s.element as z.ZodTypeAny;
    else return [];
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape as object) : [];
}

function unwrap(s: z.ZodTypeAny): z.ZodTypeAny {
  for (let i = 0; i < 20; i++) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
    else if (s instanceof z.ZodDefault) s = s._def.innerType;
    else if (s instanceof z.ZodEffects) s = s.innerType();
    else if (s instanceof z.ZodLazy) s = s.schema;
    else if (s instanceof z.ZodUnion) {
      const obj = (s.options as z.ZodTypeAny[]).map(unwrap).find((o) => o instanceof z.ZodObject);
      return obj ?? s;
    } else return s;
  }
  return s;
}
