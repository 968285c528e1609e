import type { FactSource } from './fact.js';
import type { OsFacts } from './types.js';

/** KEY=value or KEY="value" lines of os-release(5). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2];
    if (/^(["']).*\1$/.test(v)) v = v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
    out[m[1]] = v;
  }
  return out;
}

export const os: FactSource = {
  name: 'os',
  // A `read` loop, not cat: no fork.
  command: 'f=/etc/os-release; [ -r $f ] || f=/usr/lib/os-release; while IFS= read -r l || [ -n "$l" ]; do printf \'%s\\n\' "$l"; done <$f',
  parse(stdout) {
    const r = parseOsRelease(stdout);
    const facts: OsFacts = {
      id: r.ID ?? 'unknown',
      versionId: r.VERSION_ID ?? '',
      // Debian 12 has VERSION_CODENAME; older files only "VERSION="12 (bookworm)"".
      codename: r.VERSION_CODENAME ?? r.UBUNTU_CODENAME ?? /\(([^)]+)\)/.exec(r.VERSION ?? '')?.[1] ?? '',
      prettyName: r.PRETTY_NAME ?? r.NAME ?? '',
      family: 'debian',
    };
    return { os: facts };
  },
};
