import { describe, expect, it } from 'vitest';
import { createRenderer } from '../../../src/render/template.js';
import { UserError } from '../../../src/errors.js';

const r = createRenderer({ sharedDir: '/nonexistent-shared-dir' });
const render = (t: string, data: Record<string, unknown> = {}) => r.renderString(t, data, 'test');

describe('helpers', () => {
  it.each([
    ['{{json v}}', { v: { a: [1, 'x'] } }, '{"a":[1,"x"]}'],
    ['{{json v 2}}', { v: { a: 1 } }, '{\n  "a": 1\n}'],
    ['{{join v " "}}', { v: ['a', 'b', 3] }, 'a b 3'],
    ['{{join v}}', { v: ['a', 'b'] }, 'a, b'],
    ['{{indent 2 v}}', { v: 'a\n\nb' }, '  a\n\n  b'],
    ['{{#indent 4}}x\ny{{/indent}}', {}, '    x\n    y'],
    ['{{default v "fb"}}', { v: '' }, 'fb'],
    ['{{default v "fb"}}', { v: 0 }, '0'],
    ['{{default v "fb"}}', {}, 'fb'],
    ['{{#if (eq a 1)}}y{{else}}n{{/if}}', { a: 1 }, 'y'],
    ['{{#if (eq a "1")}}y{{else}}n{{/if}}', { a: 1 }, 'n'],
    ['{{#if (ne a 1)}}y{{else}}n{{/if}}', { a: 2 }, 'y'],
    ['{{#if (lt a 10)}}y{{else}}n{{/if}}', { a: 9 }, 'y'],
    ['{{#if (gt a 10)}}y{{else}}n{{/if}}', { a: 9 }, 'n'],
    ['{{#if (lte a 9)}}y{{else}}n{{/if}}', { a: 9 }, 'y'],
    ['{{#if (gte a 10)}}y{{else}}n{{/if}}', { a: 9 }, 'n'],
    ['{{#if (and a b c)}}y{{else}}n{{/if}}', { a: 1, b: true, c: 'x' }, 'y'],
    ['{{#if (and a b)}}y{{else}}n{{/if}}', { a: 1, b: 0 }, 'n'],
    ['{{#if (or a b)}}y{{else}}n{{/if}}', { a: 0, b: 'x' }, 'y'],
    ['{{#if (or a b)}}y{{else}}n{{/if}}', { a: 0, b: '' }, 'n'],
    ['{{#if (not a)}}y{{else}}n{{/if}}', { a: false }, 'y'],
    ['{{upper v}}/{{lower v}}', { v: 'MiX' }, 'MIX/mix'],
    ['{{quote v}}', { v: "it's $(x)" }, `'it'\\''s $(x)'`],
    ['{{quote v}}', { v: 'plain' }, 'plain'],
    ['{{#if (includes v "b")}}y{{else}}n{{/if}}', { v: ['a', 'b'] }, 'y'],
    ['{{#if (includes v "c")}}y{{else}}n{{/if}}', { v: ['a', 'b'] }, 'n'],
  ])('%s with %j → %j', (t, data, expected) => {
    expect(render(t, data as Record<string, unknown>)).toBe(expected);
  });

  it.each([
    ['{{join v ","}}', { v: 'notalist' }, /expected a list/],
    ['{{indent x v}}', { x: 'two', v: 'a' }, /whole number/],
    ['{{#if (lt a b)}}{{/if}}', { a: {}, b: 1 }, /compares numbers or strings/],
    ['{{upper v}}', {}, /argument 1 is undefined/],
    ['{{json v}}', {}, /argument 1 is undefined/],
  ])('%s with %j fails as a UserError', (t, data, message) => {
    let err: unknown;
    try {
      render(t, data as Record<string, unknown>);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(message);
  });

  it('quote refuses non-strings (objects would print [object Object])', () => {
    expect(() => render('{{quote v}}', { v: { a: 1 } })).toThrow(/expected a string or number/);
  });
});
