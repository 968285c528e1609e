/**
 * A user's role (TypeScript outside infra's package) compiled once and kept, so the compiled
 * CLI imports plain JavaScript instead of starting tsx (its loader thread and esbuild service
 * cost ~130 ms per run). The role is bundled by esbuild into one module under the user's cache
 * dir, with `import 'infra'` pointing at the library this process runs (one copy of it).
 *
 * Never stale: the manifest beside the module records a hash of the exact bytes esbuild compiled
 * for every input file; a lookup re-reads and re-hashes them all, and any difference rebuilds.
 * A role the cache cannot reproduce faithfully (it imports a package, reads import.meta beyond
 * url/filename/dirname, uses CommonJS names, or does not compile) is not cached: undefined, and
 * the caller loads it through tsx as before.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Bumped when what is written changes: older entries are then simply rebuilt. */
const FORMAT = 1;
/** A replaced module is removed once no run started before the rebuild can still be importing it. */
const OLD_OUTPUT_GRACE_MS = 3_600_000;

interface Manifest {
  format: number;
  source: string;
  infra: string;
  /** Absolute path → sha256 of the bytes compiled. */
  inputs: Record<string, string>;
  output: string;
}

/**
 * The URL of `file` compiled (from the cache when every input is unchanged, else compiled now
 * and stored), or undefined when this role must load through tsx.
 */
export async function cachedRoleUrl(file: string, opts: { infraUrl: string; cacheDir: string }): Promise<string | undefined> {
  const entry = join(opts.cacheDir, sha256(`${FORMAT}\0${file}\0${opts.infraUrl}`).slice(0, 32));
  const manifest = await readManifest(join(entry, 'manifest.json'));
  if (manifest && manifest.source === file && manifest.infra === opts.infraUrl && (await unchanged(manifest.inputs))) {
    return pathToFileURL(join(entry, manifest.output)).href;
  }
  const built = await compile(file, opts.infraUrl);
  if (!built) return undefined;
  try {
    await mkdir(entry, { recursive: true });
    const output = `role-${sha256(built.code).slice(0, 16)}.mjs`;
    await writeAtomically(join(entry, output), built.code);
    const next: Manifest = { format: FORMAT, source: file, infra: opts.infraUrl, inputs: built.inputs, output };
    await writeAtomically(join(entry, 'manifest.json'), JSON.stringify(next, null, 2) + '\n');
    await removeOldOutputs(entry, output);
    return pathToFileURL(join(entry, output)).href;
  } catch {
    return undefined; // an unwritable cache dir: tsx, as before
  }
}

async function readManifest(path: string): Promise<Manifest | undefined> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as Manifest;
    return m.format === FORMAT ? m : undefined;
  } catch {
    return undefined;
  }
}

async function unchanged(inputs: Record<string, string>): Promise<boolean> {
  const checks = await Promise.all(
    Object.entries(inputs).map(([path, hash]) => readFile(path).then((bytes) => sha256(bytes) === hash, () => false)),
  );
  return checks.length > 0 && checks.every(Boolean);
}

const LOADERS: Record<string, 'ts' | 'tsx' | 'js' | 'jsx' | 'json'> = {
  '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.tsx': 'tsx', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.jsx': 'jsx', '.json': 'json',
};

/** One ESM module from the role's files, and the hash of each file as compiled; undefined when not faithful. */
async function compile(file: string, infraUrl: string): Promise<{ code: string; inputs: Record<string, string> } | undefined> {
  const { build } = await import('esbuild');
  const inputs: Record<string, string> = {};
  let faithful = true;
  const plugin = {
    name: 'infra-role-cache',
    setup(b: import('esbuild').PluginBuild) {
      // Bare specifiers: 'infra' is the running library; Node's built-ins stay imports; a
      // package would resolve from the cache dir, not the role's: not cacheable.
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path === 'infra') return { path: infraUrl, external: true };
        if (!isBuiltin(args.path)) faithful = false;
        return { path: args.path, external: true };
      });
      b.onLoad({ filter: /.*/ }, async (args) => {
        const loader = LOADERS[args.path.slice(args.path.lastIndexOf('.'))];
        if (!loader) {
          faithful = false;
          return undefined;
        }
        const bytes = await readFile(args.path);
        inputs[args.path] = sha256(bytes);
        // The module runs from the cache dir: where it reads its own location, it gets its source's.
        const text = bytes.toString('utf8').replace(/\bimport\.meta\.(url|filename|dirname)\b/g, (_, k: string) =>
          JSON.stringify(k === 'url' ? pathToFileURL(args.path).href : k === 'filename' ? args.path : dirname(args.path)),
        );
        if (/\bimport\.meta\b/.test(text)) faithful = false;
        // CommonJS names: tsx runs such a file as CommonJS (no "type": "module"); the bundle is ESM.
        if (/\b(__dirname|__filename|require\s*\(|module\.exports)/.test(text)) faithful = false;
        return { contents: text, loader, resolveDir: dirname(args.path) };
      });
    },
  };
  let result;
  try {
    result = await build({
      entryPoints: [file],
      absWorkingDir: dirname(file),
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      logLevel: 'silent',
      plugins: [plugin],
    });
  } catch {
    return undefined; // tsx reports the error as it always did
  }
  const everyInputHashed = Object.keys(result.metafile.inputs).every((p) => resolve(dirname(file), p) in inputs);
  if (!faithful || !everyInputHashed || result.outputFiles.length !== 1) return undefined;
  return { code: result.outputFiles[0].text, inputs };
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

async function removeOldOutputs(entry: string, keep: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(entry)) {
    if (name === keep || !name.startsWith('role-')) continue;
    const path = join(entry, name);
    const info = await stat(path).catch(() => undefined);
    if (info && now - info.mtimeMs > OLD_OUTPUT_GRACE_MS) await rm(path, { force: true });
  }
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
