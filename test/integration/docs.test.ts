/**
 * Issue 19, done when: `infra docs` writes an SVG that a browser renders (headless Chromium →
 * PNG, decoded here, not blank), and the firewall matrix it writes for a fleet matches what
 * `nft list ruleset` shows on the hosts once hardening is applied; `--facts` reads the
 * installed versions from the hosts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inflateSync } from 'node:zlib';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { startFleet, type Fleet } from './fleet.js';
import { infra, REPO } from './helpers/cli.js';

const run = promisify(execFile);
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'infra-docs-it-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// ---- the SVG in a browser -------------------------------------------------------------

/** Decodes an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) into RGBA pixels. */
function decodePng(png: Buffer): { width: number; height: number; rgba: Buffer } {
  expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const len = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect([data[8], data[12]], 'bit depth 8, not interlaced').toEqual([8, 0]);
      channels = ({ 2: 3, 6: 4 } as Record<number, number>)[data[9]];
      expect(channels, `colour type ${data[9]}`).toBeDefined();
    } else if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = Buffer.alloc(width * height * 4);
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? line[i - channels] : 0;
      const b = prev[i];
      const c = i >= channels ? prev[i - channels] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      line[i] = (line[i] + [0, a, b, (a + b) >> 1, paeth][filter]) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      for (let k = 0; k < 4; k++) out[(y * width + x) * 4 + k] = k < channels ? line[x * channels + k] : 255;
    }
    prev = line;
  }
  return { width, height, rgba: out };
}

let chromium: string;

/** The SVG as headless Chromium draws it, decoded. */
async function screenshot(svgFile: string, name: string): Promise<ReturnType<typeof decodePng>> {
  const svg = await readFile(svgFile, 'utf8');
  const size = /<svg width="([\d.]+)pt" height="([\d.]+)pt"/.exec(svg);
  const [w, h] = size ? [Math.ceil((Number(size[1]) * 4) / 3), Math.ceil((Number(size[2]) * 4) / 3)] : [400, 300];
  const png = join(tmp, `${name}.png`);
  await run(chromium, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${join(tmp, `chromium-${name}`)}`,
    `--screenshot=${png}`, `--window-size=${w},${h}`, `file://${svgFile}`,
  ], { timeout: 60_000 });
  return decodePng(await readFile(png));
}

const notWhite = (img: ReturnType<typeof decodePng>) => {
  let n = 0;
  for (let i = 0; i < img.rgba.length; i += 4) if (img.rgba[i] < 235 || img.rgba[i + 1] < 235 || img.rgba[i + 2] < 235) n++;
  return n;
};

describe('the network diagram opens in a browser', () => {
  beforeAll(async () => {
    chromium = (await run('bash', [join(REPO, 'test/image/ensure-chromium.sh')], { timeout: 600_000 })).stdout.trim();
  }, 660_000);

  it('infra docs -i lab: Chromium renders the SVG, with the drawing in it', async () => {
    const out = join(tmp, 'lab');
    const r = await infra(['docs', '-i', 'lab', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const img = await screenshot(join(out, 'network.svg'), 'lab');
    expect(img.width).toBeGreaterThan(1000);
    const share = notWhite(img) / (img.width * img.height);
    expect(share).toBeGreaterThan(0.05); // tier boxes, hosts, edges, labels
    // The bastion path is drawn in its own blue (#1a73e8): the edges are there, not just boxes.
    let blue = 0;
    for (let i = 0; i < img.rgba.length; i += 4) if (Math.abs(img.rgba[i] - 0x1a) < 40 && Math.abs(img.rgba[i + 1] - 0x73) < 40 && Math.abs(img.rgba[i + 2] - 0xe8) < 40) blue++;
    expect(blue).toBeGreaterThan(100);
  }, 120_000);

  it('a blank SVG decodes as blank (the check above can fail)', async () => {
    const blank = join(tmp, 'blank.svg');
    await writeFile(blank, '<svg xmlns="http://www.w3.org/2000/svg" width="300pt" height="200pt" viewBox="0 0 300 200"><rect width="300" height="200" fill="white"/></svg>');
    expect(notWhite(await screenshot(blank, 'blank'))).toBe(0);
  }, 120_000);
});

// ---- the matrix against nftables on hardened hosts ---------------------------------------

const SITE = join(REPO, 'playbooks/site.yaml');
/** Every group site.yaml's plays target exists in the fleet (empty when it has no such host). */
const siteGroups = (parse(readFileSync(SITE, 'utf8')) as { hosts: string }[]).flatMap((p) => p.hosts.split(/[:,]/)).filter((h) => /^[A-Za-z_][\w-]*$/.test(h) && h !== 'all');

/** A host's accepted (service → sources) from `nft -j list table inet infra_filter`. */
function nftAccepts(json: string): Map<string, string[]> {
  type Expr = Record<string, any>;
  const addr = (v: any): string[] =>
    typeof v === 'string' ? [v] : v?.prefix ? [`${v.prefix.addr}/${v.prefix.len}`] : v?.range ? [v.range.join('-')] : v?.set ? v.set.flatMap(addr) : [];
  const out = new Map<string, string[]>();
  for (const item of JSON.parse(json).nftables as Expr[]) {
    const expr = item.rule?.expr as Expr[] | undefined;
    if (!expr || !expr.some((e) => 'accept' in e)) continue;
    let service: string | undefined;
    const sources: string[] = [];
    for (const e of expr) {
      const m = e.match;
      if (!m) continue;
      if (m.left?.payload?.field === 'saddr') sources.push(...addr(m.right));
      else if (m.left?.payload?.field === 'dport') service = `${m.left.payload.protocol}/${m.right?.range ? m.right.range.join('-') : m.right}`;
      else if (m.left?.meta?.key === 'l4proto' && (m.right === 112 || m.right === 'vrrp')) service = 'vrrp';
    }
    if (!service) continue;
    out.set(service, [...(out.get(service) ?? []), ...(sources.length ? sources : ['any'])]);
  }
  return new Map([...out].map(([k, v]) => [k, norm(v)]));
}

/**
 * Addresses as the IPv4 intervals they cover, merged ("a-b" in numbers), then anything else
 * ("any"): nft stores a set as intervals and prints neighbours merged (.2 and .3 → .2/31).
 */
function norm(xs: string[]): string[] {
  const ip4 = (s: string) => s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const spans: [number, number][] = [];
  const other = new Set<string>();
  for (const x of xs) {
    const cidr = /^(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?$/.exec(x);
    const range = /^(\d+\.\d+\.\d+\.\d+)-(\d+\.\d+\.\d+\.\d+)$/.exec(x);
    const span = /^(\d+)-(\d+)$/.exec(x); // already normalized
    if (cidr) {
      const size = 2 ** (32 - Number(cidr[2] ?? 32));
      const start = ip4(cidr[1]) - (ip4(cidr[1]) % size);
      spans.push([start, start + size - 1]);
    } else if (range) spans.push([ip4(range[1]), ip4(range[2])]);
    else if (span) spans.push([Number(span[1]), Number(span[2])]);
    else other.add(x);
  }
  const merged: [number, number][] = [];
  for (const [a, b] of spans.sort((x, y) => x[0] - y[0])) {
    const last = merged[merged.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return [...merged.map(([a, b]) => `${a}-${b}`), ...[...other].sort()];
}

/** Whether every address `want` covers is in `have` (both normalized). */
const covered = (have: string[], want: string[]) => norm([...have, ...want]).join() === norm(have).join();

/** firewall.md → "Rules per host": host → (service → sources). */
function documentedRules(md: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  const section = md.slice(md.indexOf('## Rules per host'));
  for (const block of section.split(/^### /m).slice(1)) {
    const host = block.split(' ')[0];
    const rules = new Map<string, string[]>();
    for (const m of block.matchAll(/^\| `([^`]+)` \| ([^|]+) \|/gm)) rules.set(m[1], norm(m[2].trim().split(', ')));
    out.set(host, rules);
  }
  return out;
}

/** firewall.md → "Flows": [from, to, service, sources]. */
function documentedFlows(md: string): { from: string; to: string; service: string; sources: string[] }[] {
  const section = md.slice(md.indexOf('## Flows'), md.indexOf('## Rules per host'));
  return [...section.matchAll(/^\| `([^`]+)` \| `([^`]+)` \| `([^`]+)` \| [^|]* \| ([^|]+) \|$/gm)].map((m) => ({ from: m[1], to: m[2], service: m[3], sources: norm(m[4].trim().split(', ')) }));
}

describe('the firewall matrix matches nft on hardened hosts', () => {
  let fleet: Fleet;
  let md: string;
  beforeAll(async () => {
    fleet = await startFleet({
      targets: [
        { name: 'api1', groups: ['api'] },
        { name: 'db1', groups: ['postgres'] },
      ],
      groupVars: {
        ...Object.fromEntries(siteGroups.map((g) => [g, {}])),
        all: { firewall: { allow: [{ port: 9100, from: ['postgres'], comment: 'node exporter' }] } },
        api: {
          firewall: {
            allow: [
              { port: 443, from: ['any'], comment: 'https' },
              { port: '8000-8010', proto: 'udp', from: ['bastion', 'postgres'], comment: 'a udp range' },
            ],
          },
        },
        postgres: { firewall: { allow: [{ port: 5432, from: ['api', '192.0.2.0/24'], comment: 'postgresql' }, { port: 5432, from: ['postgres'] }] } },
      },
    });
    const gateway = fleet.bastion.ip.replace(/\.\d+$/, '.1');
    await writeFile(join(fleet.inventoryDir, 'group_vars', 'bastion.yaml'), `ssh_allow_from: [${gateway}/32]\n`);
    const applied = await infra(['run', 'hardening', '-i', fleet.inventoryDir, '--json'], { timeoutMs: 600_000 });
    expect(applied.code, applied.stderr).toBe(0);
    const docs = await infra(['docs', '-i', fleet.inventoryDir, '--out', join(tmp, 'fleet')]);
    expect(docs.code, docs.stderr).toBe(0);
    md = await readFile(join(tmp, 'fleet', 'firewall.md'), 'utf8');
  }, 700_000);
  afterAll(async () => {
    await fleet?.down();
  });

  const nftOf = async (host: string) => {
    const r = await fleet.exec(host, 'nft -j list table inet infra_filter');
    expect(r.code, r.stderr).toBe(0);
    return nftAccepts(r.stdout);
  };

  it.each(['db1', 'api1'])("%s: each documented rule is in nft with the same sources, and nft accepts nothing else", async (host) => {
    const documented = documentedRules(md).get(host)!;
    expect(documented.size).toBeGreaterThanOrEqual(3);
    expect(await nftOf(host)).toEqual(documented);
  });

  it('a sample of matrix flows (api → postgres:5432, postgres → *:9100, any → api:443, a udp range): their sources are let in on the hosts', async () => {
    const flows = documentedFlows(md);
    const flow = (from: string, service: string) => flows.find((f) => f.from === from && f.service === service)!;
    const sample = [
      { ...flow('api', 'tcp/5432'), host: 'db1' },
      { ...flow('postgres', 'tcp/9100'), host: 'api1' },
      { ...flow('any', 'tcp/443'), host: 'api1' },
      { ...flow('postgres', 'udp/8000-8010'), host: 'api1' },
    ];
    expect(sample.map((s) => [s.from, s.to])).toEqual([['api', 'postgres'], ['postgres', 'all'], ['any', 'api'], ['postgres', 'api']]);
    expect(sample[0].sources).toEqual(norm([fleet.targets.find((t) => t.name === 'api1')!.ip]));
    for (const s of sample) {
      const accepted = (await nftOf(s.host)).get(s.service) ?? [];
      expect(accepted.length, `${s.host} accepts ${s.service}`).toBeGreaterThan(0);
      expect(covered(accepted, s.sources), `${s.from} → ${s.host} ${s.service}: ${s.sources} within ${accepted}`).toBe(true);
    }
  });

  it('--facts: the inventory page shows the versions installed on the hosts (read-only run)', async () => {
    const out = join(tmp, 'facts');
    const r = await infra(['docs', '-i', fleet.inventoryDir, '--out', out, '--facts']);
    expect(r.code, r.stderr).toBe(0);
    const page = await readFile(join(out, 'inventory.md'), 'utf8');
    const header = page.split('\n').find((l) => l.startsWith('| host | OS | kernel |'))!;
    const columns = header.split('|').map((c) => c.trim());
    for (const host of ['api1', 'db1']) {
      const row = page.split('\n').find((l) => l.startsWith(`| \`${host}\` | Debian GNU/Linux 12`))!;
      expect(row, host).toBeDefined();
      const cells = row.split('|').map((c) => c.trim());
      for (const pkg of ['openssh-server', 'nftables', 'fail2ban']) {
        const version = (await fleet.exec(host, `dpkg-query -W -f='\${Version}' ${pkg}`)).stdout.trim();
        expect(version).not.toBe('');
        expect(cells[columns.indexOf(pkg)], `${host} ${pkg}`).toBe(`\`${version}\``);
      }
    }
    // Without --facts the same page names the command instead: the facts are the only difference.
    const plain = await readFile(join(tmp, 'fleet', 'inventory.md'), 'utf8');
    expect(plain).toMatch(/Not gathered here: `infra docs -i .* --facts`/);
  });
});
