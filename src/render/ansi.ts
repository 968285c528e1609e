/** Plain ANSI styling (no dependency); every function is the identity when color is off. */
export type Style = (text: string) => string;

const wrap =
  (open: number, close: number): Style =>
  (text) =>
    text === '' ? text : `\u001b[${open}m${text}\u001b[${close}m`;

export const ansi = {
  bold: wrap(1, 22),
  dim: wrap(2, 22),
  red: wrap(31, 39),
  green: wrap(32, 39),
  yellow: wrap(33, 39),
  cyan: wrap(36, 39),
  magenta: wrap(35, 39),
};

const identity: Style = (t) => t;

export function palette(color: boolean): typeof ansi {
  if (color) return ansi;
  return Object.fromEntries(Object.keys(ansi).map((k) => [k, identity])) as typeof ansi;
}

/** Removes ANSI escape sequences (for widths and tests). */
export function stripAnsi(text: string): string {
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}
