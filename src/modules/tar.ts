/**
 * A release artifact from a directory on the controller: a POSIX ustar archive, built the
 * same way every time (names sorted, owner 0:0, mtime 0, modes 0644/0755), so the same tree
 * always has the same sha256 and a deploy can tell "this release is already there" from
 * "same version, different content". Symlinks are kept; node_modules and .git are not
 * packed (the host installs dependencies from the lock file).
 */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

const BLOCK = 512;
/** Never packed: dependencies are installed on the host, history stays home. */
export const SKIPPED = new Set(['node_modules', '.git']);

interface Entry {
  name: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  body?: Buffer;
  target?: string;
}

/** Every entry under `dir`, sorted by path, directories before their contents. */
async function entries(dir: string, prefix = ''): Promise<Entry[]> {
  const out: Entry[] = [];
  const names = (await readdir(dir)).filter((n) => !SKIPPED.has(n)).sort();
  for (const n of names) {
    const path = join(dir, n);
    const name = prefix + n;
    const st = await lstat(path);
    if (st.isSymbolicLink()) out.push({ name, type: 'symlink', mode: 0o777, target: await readlink(path) });
    else if (st.isDirectory()) out.push({ name: `${name}/`, type: 'dir', mode: 0o755 }, ...(await entries(path, `${name}/`)));
    else if (st.isFile()) out.push({ name, type: 'file', mode: st.mode & 0o111 ? 0o755 : 0o644, body: await readFile(path) });
    else throw new Error(`${path}: only files, directories and symlinks can be packed`);
  }
  return out;
}

/** The ustar archive of a directory's contents (paths relative to it). */
export async function packDirectory(dir: string): Promise<Buffer> {
  const blocks: Buffer[] = [];
  for (const e of await entries(dir)) {
    blocks.push(header(e));
    if (e.body) blocks.push(e.body, Buffer.alloc(pad(e.body.length)));
  }
  blocks.push(Buffer.alloc(BLOCK * 2)); // end of archive
  return Buffer.concat(blocks);
}

const pad = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

function header(e: Entry): Buffer {
  const h = Buffer.alloc(BLOCK);
  const [prefix, name] = splitName(e.name);
  const size = e.body?.length ?? 0;
  if (size > 0o77777777777) throw new Error(`${e.name}: larger than 8 GiB`);
  if ((e.target ?? '').length > 100) throw new Error(`${e.name}: symlink target longer than 100 bytes`);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(e.mode, 7), 100);
  h.write(octal(0, 7), 108); // uid
  h.write(octal(0, 7), 116); // gid
  h.write(octal(size, 11), 124);
  h.write(octal(0, 11), 136); // mtime
  h.write(' '.repeat(8), 148); // checksum field counts as spaces while summing
  h.write(e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2', 156);
  if (e.target) h.write(e.target, 157, 100, 'utf8');
  h.write('ustar\u000000', 257);
  h.write('root', 265);
  h.write('root', 297);
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${octal(sum, 6)}\u0000 `, 148);
  return h;
}

/** ustar keeps up to 100 bytes of name and 155 of prefix, split at a "/". */
function splitName(path: string): [string, string] {
  if (Buffer.byteLength(path) <= 100) return ['', path];
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
  for (let i = trimmed.lastIndexOf('/'); i > 0; i = trimmed.lastIndexOf('/', i - 1)) {
    const prefix = trimmed.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return [prefix, name];
  }
  throw new Error(`${path}: path too long for a ustar archive (name 100, prefix 155 bytes): pack it yourself and give the .tar.gz`);
}

const octal = (n: number, width: number) => n.toString(8).padStart(width, '0');
