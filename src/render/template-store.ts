/**
 * Compiled templates kept on disk between runs: Handlebars' precompiled form (JavaScript
 * source) and the partials and helpers a template names, stored under the hash of everything
 * the compilation depends on (template text, Handlebars version, compile options). A changed
 * template is another key, so nothing stale is ever served; a cache that cannot be read or
 * written only costs the compilation.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Bumped when what is stored changes. */
const FORMAT = 1;

/** A partial or helper a template names, where it names it (for `infra check`). */
export interface TemplateRef {
  kind: 'partial' | 'helper';
  name: string;
  line?: number;
  col?: number;
}

/**
 * What is known of a template: the partials and helpers it names (`infra check` reads them)
 * and, once it has been rendered, Handlebars' precompiled spec (a JS object literal). The
 * store keeps both or nothing.
 */
export interface StoredTemplate {
  refs?: TemplateRef[];
  spec?: string;
}

export interface TemplateStore {
  get(source: string): StoredTemplate | undefined;
  put(source: string, value: StoredTemplate): void;
}

/** `salt`: everything besides the text that shapes the compiled output (version, options). */
export function templateStore(dir: string | undefined, salt: string): TemplateStore {
  if (!dir) return { get: () => undefined, put: () => {} };
  const pathOf = (source: string) => join(dir, `${createHash('sha256').update(`${FORMAT}\0${salt}\0${source}`).digest('hex')}.json`);
  let made = false;
  return {
    get(source) {
      try {
        const v = JSON.parse(readFileSync(pathOf(source), 'utf8')) as StoredTemplate | null;
        return typeof v?.spec === 'string' && Array.isArray(v.refs) ? v : undefined;
      } catch {
        return undefined;
      }
    },
    put(source, value) {
      const path = pathOf(source);
      try {
        if (!made) mkdirSync(dir, { recursive: true });
        made = true;
        const tmp = `${path}.${process.pid}.tmp`;
        writeFileSync(tmp, JSON.stringify(value));
        renameSync(tmp, path);
      } catch {
        // Unwritable: compiled again next time.
      }
    },
  };
}
