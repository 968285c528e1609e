/** A role's zod schema → its variables reference: type in words, default, .describe() text. */
import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import { schemaRows, typeText, inline } from '../../../src/docs/schema-table.js';
import { vars as hardeningVars } from '../../../roles/hardening/role.js';

describe('typeText', () => {
  it.each([
    [z.string(), 'string'],
    [z.string().min(1), 'non-empty string'],
    [z.string().max(8), 'string of at most 8 characters'],
    [z.string().regex(/^[a-z]+$/), 'string matching `^[a-z]+$`'],
    [z.string().url(), 'string (a URL)'],
    [z.number(), 'number'],
    [z.number().int().min(1).max(65535), 'integer 1–65535'],
    [z.number().int().min(5), 'integer ≥ 5'],
    [z.number().gt(0).lte(1), 'number > 0 ≤ 1'],
    [z.boolean(), 'boolean'],
    [z.literal('inventory'), '`inventory`'],
    [z.enum(['tcp', 'udp']), '`tcp` | `udp`'],
    [z.union([z.number().int(), z.string()]), 'integer, or string'],
    [z.array(z.string()), 'list of strings'],
    [z.array(z.string().min(1)).min(1), 'non-empty list of non-empty strings'],
    [z.array(z.union([z.number(), z.string()])), 'list of (numbers, or strings)'],
    [z.array(z.object({ name: z.string(), keys: z.array(z.string()) })), 'list of objects {name, keys}'],
    [z.record(z.union([z.string(), z.number()])), 'mapping of string → (string, or number)'],
    [z.string().optional().nullable(), 'string'],
    [z.any(), 'any value'],
    [z.object({ a: z.string() }).strict().superRefine(() => {}), 'object {a}'],
  ])('%#: %s', (schema, want) => {
    expect(typeText(schema as z.ZodTypeAny)).toBe(want);
  });
});

describe('schemaRows', () => {
  const schema = z.object({
    port: z.number().int().default(22).describe('SSH port'),
    name: z.string().describe('who').optional(),
    must: z.string(),
    maybe: z.string().nullable().default(null),
    fw: z
      .object({
        enabled: z.boolean().default(true),
        allow: z.array(z.object({ port: z.number().int(), from: z.array(z.string()).min(1).describe('sources') }).strict()).default([]),
      })
      .default({}),
  });

  it('one row per variable and per nested field, with defaults, "required" and descriptions', () => {
    expect(schemaRows(schema)).toEqual([
      { path: 'port', type: 'integer', default: '22', description: 'SSH port' },
      { path: 'name', type: 'string', default: 'none', description: 'who' },
      { path: 'must', type: 'string', default: 'required', description: '' },
      { path: 'maybe', type: 'string, or null', default: 'null', description: '' },
      { path: 'fw', type: 'object {enabled, allow}', default: '{}', description: '' },
      { path: 'fw.enabled', type: 'boolean', default: 'true', description: '' },
      { path: 'fw.allow', type: 'list of objects {port, from}', default: '[]', description: '' },
      { path: 'fw.allow[].port', type: 'integer', default: 'required', description: '' },
      { path: 'fw.allow[].from', type: 'non-empty list of strings', default: 'required', description: 'sources' },
    ]);
  });

  it('defaults are written as YAML flow values', () => {
    expect([inline(['a', 'b']), inline({}), inline({ k: [1, true] }), inline(''), inline(null)]).toEqual(['[a, b]', '{}', '{k: [1, true]}', '""', 'null']);
  });

  it('the hardening role: its .describe() texts reach the reference', () => {
    const rows = new Map(schemaRows(hardeningVars).map((r) => [r.path, r]));
    expect(rows.get('ssh_allow_from')).toMatchObject({ type: 'list of strings', default: '[]', description: expect.stringMatching(/^Who may SSH to a jump host/) });
    expect(rows.get('firewall.allow[].proto')).toMatchObject({ type: '`tcp` | `udp` | `vrrp`', default: 'tcp', description: expect.stringMatching(/vrrp \(keepalived\)/) });
    expect(rows.get('admin_users[].name')).toMatchObject({ default: 'required' });
  });
});
