import { describe, it, expect } from 'vitest';
import { Secret, MASK, redact, redactDeep, registerSecretValue, MIN_SECRET_LENGTH } from '../../../src/secrets/secret.js';
import { UserError } from '../../../src/errors.js';
import { inspect } from 'node:util';

const unique = (p: string) => `${p}-${Math.random().toString(36).slice(2, 10)}`;

describe('redaction', () => {
  it('a Secret in JSON, String() and inspect() shows the mask', () => {
    const v = unique('json-canary');
    const s = new Secret(v);
    expect(JSON.stringify({ db: { password: s } })).toBe(`{"db":{"password":"${MASK}"}}`);
    expect(`${s}`).toBe(MASK);
    expect(inspect({ s })).not.toContain(v);
    expect(s.reveal()).toBe(v);
  });

  it('a revealed secret templated into a larger string is masked by redact()', () => {
    const v = unique('tmpl-canary');
    const s = new Secret(v);
    const rendered = `[client]\npassword = ${s.reveal()}\nuser = app\n`;
    expect(redact(rendered)).toBe(`[client]\npassword = ${MASK}\nuser = app\n`);
  });

  it('error messages containing a secret are masked (as the CLI prints them)', () => {
    const v = unique('err-canary');
    new Secret(v);
    const e = new UserError(`psql: FATAL: password authentication failed for "${v}"`, { pos: { file: 'x.yaml', line: 2 } });
    expect(redact(e.format())).toBe(`x.yaml:2: psql: FATAL: password authentication failed for "${MASK}"`);
  });

  it('redactDeep masks Secrets and revealed values inside strings, keeping the shape', () => {
    const v = unique('deep-canary');
    const s = new Secret(v);
    const out = redactDeep({ a: [s, `x ${v} y`], n: 3, u: undefined, d: new Date(0) });
    expect(out).toEqual({ a: [MASK, `x ${MASK} y`], n: 3, d: '1970-01-01T00:00:00.000Z' });
  });

  it('a secret with quotes, backslashes or newlines is masked in JSON text too', () => {
    const v = `q"uo\\te-${unique('x')}`;
    registerSecretValue(v);
    const json = JSON.stringify({ line: `pw=${v}` });
    expect(redact(json)).not.toContain(JSON.stringify(v).slice(1, -1));
    expect(redactDeep({ line: `pw=${v}` })).toEqual({ line: `pw=${MASK}` });
  });

  it('each line of a multi-line secret (a TLS key) is masked in line-oriented output such as diffs', () => {
    const body = ['-----BEGIN PRIVATE KEY-----', unique('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC'), unique('kcwggSjAgEAAoIBAQC7'), '-----END PRIVATE KEY-----'];
    new Secret(body.join('\n') + '\n');
    const diff = `--- a\n+++ b\n@@ -1 +1,2 @@\n+${body[1]}\n+${body[2]}\n`;
    const out = redact(diff);
    expect(out).not.toContain(body[1]);
    expect(out).not.toContain(body[2]);
    expect(out).toContain(`+${MASK}`);
  });

  it(`values shorter than ${MIN_SECRET_LENGTH} characters are not registered (they would mask everything)`, () => {
    registerSecretValue('ab');
    expect(redact('a cab and a lab')).toBe('a cab and a lab');
    const s = new Secret('zq');
    expect(JSON.stringify(s)).toBe(`"${MASK}"`); // the wrapper still masks
  });

  it('overlapping secrets: the longest is masked first, leaving no fragment', () => {
    const short = unique('ovl');
    const long = `${short}-and-more`;
    registerSecretValue(short);
    registerSecretValue(long);
    expect(redact(`x=${long} y=${short}`)).toBe(`x=${MASK} y=${MASK}`);
  });
});
