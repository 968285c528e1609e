/**
 * The ONLY way a string reaches a shell. Every module builds its commands with `quote`
 * or the `sh` tagged template, which quotes every interpolated value.
 */
import { Secret, addSecretForm } from '../secrets/secret.js';

/** POSIX single-quote a value: safe for any byte sequence except NUL. */
export function quote(value: string | number | Secret): string {
  if (value instanceof Secret) {
    throw new Error('a Secret must never be placed in a command line: send it over stdin');
  }
  const s = String(value);
  if (s.includes('\0')) throw new Error('cannot quote a string containing a NUL byte');
  if (s === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// A revealed secret quoted into a command ('O'\''Brien') no longer contains its value: mask this form too.
addSecretForm(quote);

/** Raw shell text that the `sh` tag must not quote (for already-built fragments). */
export class ShellFragment {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}
export const raw = (text: string): ShellFragment => new ShellFragment(text);

/**
 * Tagged template: sh`chmod ${mode} ${path}` quotes every interpolation.
 * Arrays become space-separated quoted words; ShellFragment passes through.
 */
export function sh(strings: TemplateStringsArray, ...values: unknown[]): string {
  let out = strings[0];
  values.forEach((v, i) => {
    out += renderValue(v) + strings[i + 1];
  });
  return out;
}

function renderValue(v: unknown): string {
  if (v instanceof ShellFragment) return v.text;
  if (Array.isArray(v)) return v.map(renderValue).join(' ');
  if (typeof v === 'string' || typeof v === 'number' || v instanceof Secret) return quote(v as string);
  throw new Error(`sh: cannot interpolate ${typeof v}`);
}
