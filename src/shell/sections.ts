/**
 * One round trip, several answers: a script prints `<marker><name>` before each part, and
 * this splits its output back into named sections (facts, module probes).
 */
/** Splits a script's output into sections printed as `<marker><name>` lines. */
export function splitSections(stdout: string, marker: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | undefined;
  let buf: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line.startsWith(marker)) {
      if (current !== undefined) out.set(current, buf.join('\n'));
      current = line.slice(marker.length).trim();
      buf = [];
    } else if (current !== undefined) {
      buf.push(line);
    }
  }
  if (current !== undefined) out.set(current, buf.join('\n'));
  return out;
}
