/** Parsers for dpkg-query and apt-cache output (pure, table-tested). */

/** Output of `dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n' NAMES`. */
export function parseDpkgQuery(stdout: string): Map<string, string> {
  const installed = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [name, version, status] = line.split('\t');
    // "ii " = wanted install, installed. "rc " (config files only) and others are not installed.
    if (name && version && status?.startsWith('ii')) installed.set(name, version);
  }
  return installed;
}

/** Output of `apt-cache policy NAMES` → candidate version per package (null: "(none)"). */
export function parseAptPolicy(stdout: string): Map<string, string | null> {
  const candidates = new Map<string, string | null>();
  let current: string | undefined;
  for (const line of stdout.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) {
      current = head[1];
      candidates.set(current, null);
      continue;
    }
    const cand = /^\s+Candidate:\s*(\S+)/.exec(line);
    if (cand && current !== undefined) candidates.set(current, cand[1] === '(none)' ? null : cand[1]);
  }
  return candidates;
}

/** "nginx=1.22.1-9" → { name: "nginx", version: "1.22.1-9" }. */
export function splitPin(spec: string): { name: string; version?: string } {
  const i = spec.indexOf('=');
  return i < 0 ? { name: spec } : { name: spec.slice(0, i), version: spec.slice(i + 1) };
}
