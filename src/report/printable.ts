/**
 * Remote output is untrusted text on the operator's terminal: OSC 52 writes the clipboard,
 * CSI sequences clear or redraw the screen, a carriage return overwrites a line. The TTY and
 * plain reporters show every C0/C1 control character (except newline and tab) as a visible
 * `\xNN`, before adding their own colours.
 */
import type { RunEvent } from './events.js';
import { redact } from '../secrets/secret.js';

/** C0 except \t and \n, DEL, C1. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

export function escapeControls(text: string): string {
  return text.replace(CONTROL, hex);
}

/** JSON.stringify escapes C0 but writes DEL and C1 raw: escape them too (same value, plain ASCII). */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The event with every string redacted, then escaped (deep): what the text reporters may put
 * on a terminal. Redacted first: a secret holding a control character is still recognised.
 */
export function printableEvent<T extends RunEvent>(e: T): T {
  return escapeDeep(e);
}

function escapeDeep<T>(value: T): T {
  if (typeof value === 'string') return escapeControls(redact(value)) as T;
  if (Array.isArray(value)) return value.map(escapeDeep) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeDeep(v)])) as T;
  }
  return value;
}
