/**
 * Pure text edits behind files.line and files.block (the semantics of Ansible's lineinfile
 * and blockinfile, kept small). Lines are compared without their newline.
 */
export interface Placement {
  /** Regexp: insert after the LAST matching line; "EOF" (default) appends. */
  insertAfter?: string;
  /** Regexp: insert before the FIRST matching line; "BOF" puts it first. */
  insertBefore?: string;
}

export interface LineEdit extends Placement {
  line?: string;
  regexp?: string;
  state: 'present' | 'absent';
}

function insertAt(lines: string[], p: Placement): number {
  if (p.insertBefore !== undefined) {
    if (p.insertBefore === 'BOF') return 0;
    const re = new RegExp(p.insertBefore);
    const i = lines.findIndex((l) => re.test(l));
    return i >= 0 ? i : lines.length;
  }
  if (p.insertAfter !== undefined && p.insertAfter !== 'EOF') {
    const re = new RegExp(p.insertAfter);
    for (let i = lines.length - 1; i >= 0; i--) if (re.test(lines[i])) return i + 1;
  }
  return lines.length;
}

/** Returns the new lines (the same array contents when nothing changes). */
export function editLine(lines: string[], e: LineEdit): string[] {
  const re = e.regexp !== undefined ? new RegExp(e.regexp) : undefined;
  if (e.state === 'absent') {
    return lines.filter((l) => (re ? !re.test(l) : l !== e.line));
  }
  const line = e.line as string;
  if (re) {
    let last = -1;
    lines.forEach((l, i) => {
      if (re.test(l)) last = i;
    });
    if (last >= 0) {
      const out = [...lines];
      out[last] = line;
      return out;
    }
  }
  // Already there (also when a regexp matched nothing): adding it again would never converge.
  if (lines.includes(line)) return lines;
  const out = [...lines];
  out.splice(insertAt(lines, e), 0, line);
  return out;
}

export interface BlockEdit extends Placement {
  block: string;
  /** "# {mark} MANAGED BY INFRA": {mark} becomes markerBegin / markerEnd. */
  marker: string;
  markerBegin: string;
  markerEnd: string;
  state: 'present' | 'absent';
}

export function editBlock(lines: string[], e: BlockEdit): string[] {
  const begin = e.marker.replace('{mark}', e.markerBegin);
  const end = e.marker.replace('{mark}', e.markerEnd);
  const b = lines.indexOf(begin);
  const en = b >= 0 ? lines.indexOf(end, b + 1) : -1;
  const found = b >= 0 && en >= 0;
  if (e.state === 'absent') return found ? [...lines.slice(0, b), ...lines.slice(en + 1)] : lines;
  const body = e.block === '' ? [] : e.block.replace(/\n$/, '').split('\n');
  const block = [begin, ...body, end];
  if (found) return [...lines.slice(0, b), ...block, ...lines.slice(en + 1)];
  const at = insertAt(lines, e);
  return [...lines.slice(0, at), ...block, ...lines.slice(at)];
}

/** True when `source` compiles as a JavaScript regular expression. */
export function isValidRegexp(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}
