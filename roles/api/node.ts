/**
 * Node.js and PM2 (pure: vars + facts → tasks). Node comes from the distribution when it
 * ships the wanted major (Debian 12: 18), else from NodeSource's apt repository (Debian 12
 * with 20/22/24; Ubuntu 22.04, which ships 12, always). PM2 comes from the npm registry at a
 * pinned version, into /usr/local whatever npm's own prefix is.
 */
import { apt, command, meta, sh, type Facts, type Task } from 'infra';

export const NODE_MAJORS = [18, 20, 22, 24] as const;
export type NodeMajor = (typeof NODE_MAJORS)[number];

/** End of life of each major (nodejs.org/en/about/previous-releases). */
export const NODE_END_OF_LIFE: Record<NodeMajor, string> = {
  18: '2025-04-30',
  20: '2026-04-30',
  22: '2027-04-30',
  24: '2028-04-30',
};

/** The Node.js major each distribution release ships. */
const DISTRO_NODE: Record<string, number> = { 'debian 12': 18, 'ubuntu 22.04': 12 };

export const PM2_PREFIX = '/usr/local';
export const PM2_BIN = `${PM2_PREFIX}/bin`;
/** Replaced as a whole by npm on an upgrade: its mtime is when this PM2 was installed. */
export const PM2_DIR = `${PM2_PREFIX}/lib/node_modules/pm2`;
const PM2_PACKAGE_JSON = `${PM2_DIR}/package.json`;

export interface NodeVars {
  api_node_major: NodeMajor;
  api_nodesource_key?: string;
  api_pm2_version: string;
  api_npm_registry: string;
}

/** Where Node.js comes from on this host: the distribution, or NodeSource. */
export function nodeSource(major: NodeMajor, facts: Pick<Facts, 'os'>): 'distribution' | 'nodesource' {
  return DISTRO_NODE[`${facts.os.id} ${facts.os.versionId}`] === major ? 'distribution' : 'nodesource';
}

/** The warning for a major past its end of life on `today` (YYYY-MM-DD), or undefined. */
export function endOfLifeWarning(major: NodeMajor, today: string): string | undefined {
  const eol = NODE_END_OF_LIFE[major];
  if (today < eol) return undefined;
  const next = NODE_MAJORS.find((m) => NODE_END_OF_LIFE[m] > today);
  return (
    `Node.js ${major} reached its end of life on ${eol}: it gets no security fixes` +
    (next ? `; move to ${next} (api_node_major: ${next}, installed from NodeSource)` : '')
  );
}

/** `shippedKey`: NodeSource's signing key as the role ships it, read only when NodeSource is used. */
export function nodeTasks(v: NodeVars, facts: Pick<Facts, 'os'>, today: string, shippedKey: () => string): Task[] {
  const eol = endOfLifeWarning(v.api_node_major, today);
  const fromNodeSource = nodeSource(v.api_node_major, facts) === 'nodesource';
  return [
    ...(eol ? [meta.warn({ what: `Node.js ${v.api_node_major} end of life`, message: eol })] : []),
    ...(fromNodeSource
      ? [
          apt.repository({
            name: 'nodesource',
            uris: `https://deb.nodesource.com/node_${v.api_node_major}.x`,
            suites: 'nodistro',
            components: ['main'],
            key: v.api_nodesource_key ?? shippedKey(),
          }),
          // NodeSource's nodejs bundles npm (and conflicts with the distribution's npm);
          // latest: a changed major upgrades the installed one.
          apt.packages({ names: ['nodejs'], state: 'latest' }),
        ]
      : [apt.packages({ names: ['nodejs', 'npm'] })]),
    command.run({
      name: `pm2 ${v.api_pm2_version} from ${v.api_npm_registry}`,
      cmd: sh`npm install --global --prefix ${PM2_PREFIX} --no-fund --no-audit --registry ${v.api_npm_registry} ${`pm2@${v.api_pm2_version}`}`,
      // Read the installed version from its package.json: running `pm2 -v` as root would start a root PM2 daemon.
      unless: sh`[ "$(node -p 'require(process.argv[1]).version' ${PM2_PACKAGE_JSON} 2>/dev/null)" = ${v.api_pm2_version} ]`,
      timeoutMs: 10 * 60_000,
      notify: 'restart pm2',
    }),
  ];
}
