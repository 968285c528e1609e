/**
 * Handlebars, strict and unescaped: the only file that knows about handlebars besides its
 * helpers and the shell-field rewriting (shell-template.ts). A missing variable is a UserError
 * naming the template, line and variable; template paths cannot leave the role; Secrets are
 * revealed into the content (the host needs the real password) and masked again by the
 * redactor wherever output goes.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import Handlebars from 'handlebars';
import { UserError } from '../errors.js';
import { isSecret } from '../secrets/secret.js';
import { helpers, HelperError } from './helpers.js';
import { resolveInside } from './paths.js';
import { SHELL_HINT, SHELL_WORD_HELPER, ShellTemplateError, quoteShellTemplate, shellWord } from './shell-template.js';
import { templateStore, type StoredTemplate, type TemplateRef } from './template-store.js';

export { resolveInside } from './paths.js';

export interface Renderer {
  /** Renders roles/<role>/templates/<src> (or a path under the shared templates dir). */
  renderFile(roleDir: string, src: string, data: Record<string, unknown>): Promise<string>;
  /**
   * Renders a template string (YAML task params "{{ vars.db_name }}"); origin for errors.
   * `shell`: the string is a shell command, each {{…}} prints one quoted word (shell-template.ts).
   */
  renderString(template: string, data: Record<string, unknown>, origin: string, opts?: { shell?: boolean }): string;
  /**
   * Parses a role template without rendering it (`infra check`): syntax, unknown partials and
   * unknown helpers are UserErrors. Returns the resolved file path.
   */
  compile(roleDir: string, src: string): string;
}

const COMPILE_OPTIONS = { strict: true, noEscape: true } as const;
const SHELL_COMPILE_OPTIONS = { ...COMPILE_OPTIONS, knownHelpers: { [SHELL_WORD_HELPER]: true } };
const BUILTIN_HELPERS = ['if', 'unless', 'each', 'with', 'lookup', 'log'];
const STRING_CACHE_LIMIT = 2000;

type Compiled = (data: unknown) => string;
/** A template file as this run knows it. */
interface Loaded {
  source: string;
  stored: StoredTemplate;
  ast?: hbs.AST.Program;
  fn?: Compiled;
}

/**
 * `cacheDir`: where compiled role templates are kept between runs (template-store.ts); without
 * one, every run compiles them.
 */
export function createRenderer(opts: { sharedDir: string; cacheDir?: string }): Renderer {
  const hb = Handlebars.create();
  hb.registerHelper(helpers);
  hb.registerHelper(SHELL_WORD_HELPER, shellWord);
  const store = templateStore(opts.cacheDir, `handlebars ${Handlebars.VERSION} ${JSON.stringify(COMPILE_OPTIONS)}`);
  const fileCache = new Map<string, Loaded>();
  /** roleDir + src → the template file (resolving proves it stays inside; the files do not move during a run). */
  const located = new Map<string, string>();
  const stringCache = new Map<string, Compiled>();
  let partialNames: string[] | undefined;

  /** Shared partials: every <sharedDir>/*.hbs, by file name ("managed.hbs" → {{> managed}}). */
  function ensurePartials(): string[] {
    if (partialNames) return partialNames;
    partialNames = [];
    if (!existsSync(opts.sharedDir)) return partialNames;
    for (const f of readdirSync(opts.sharedDir).filter((n) => n.endsWith('.hbs')).sort()) {
      const file = join(opts.sharedDir, f);
      const fn = hb.compile(readFileSync(file, 'utf8'), COMPILE_OPTIONS);
      hb.registerPartial(basename(f, '.hbs'), tagErrors(fn, file));
      partialNames.push(basename(f, '.hbs'));
    }
    return partialNames;
  }

  function locate(roleDir: string, src: string): string {
    const key = `${roleDir}\0${src}`;
    let file = located.get(key);
    if (!file) located.set(key, (file = resolveTemplate(roleDir, src)));
    return file;
  }

  function resolveTemplate(roleDir: string, src: string): string {
    const inRole = resolveInside(join(roleDir, 'templates'), src);
    if (existsSync(inRole)) return inRole;
    const shared = existsSync(opts.sharedDir) ? resolveInside(opts.sharedDir, src) : undefined;
    if (shared && existsSync(shared)) return shared;
    throw new UserError(`template not found: ${inRole}`, {
      hint: `role templates live in ${join(roleDir, 'templates')}; shared ones in ${opts.sharedDir}`,
    });
  }

  /** Read once per run; parsed and compiled at most once, and only when the store does not already know. */
  function loadFile(file: string): Loaded {
    let t = fileCache.get(file);
    if (!t) {
      const source = readFileSync(file, 'utf8');
      fileCache.set(file, (t = { source, stored: store.get(source) ?? {} }));
    }
    return t;
  }
  /** Throws Handlebars' syntax errors. */
  const parsed = (t: Loaded) => (t.ast ??= hb.parse(t.source));
  /** Stored with the compiled spec (a template `infra check` only reads is parsed again next time). */
  const refsOf = (t: Loaded) => (t.stored.refs ??= references(parsed(t)));
  function compiled(t: Loaded): Compiled {
    if (!t.fn) {
      if (!t.stored.spec) {
        t.stored.spec = String(hb.precompile(parsed(t), COMPILE_OPTIONS));
        store.put(t.source, { refs: refsOf(t), spec: t.stored.spec });
      }
      t.fn = hb.template(evaluateSpec(t.stored.spec));
    }
    return t.fn;
  }

  return {
    async renderFile(roleDir, src, data) {
      const names = ensurePartials();
      const file = locate(roleDir, src);
      try {
        return compiled(loadFile(file))(revealSecrets(data));
      } catch (e) {
        throw templateError(e, file, fileCache.get(file)?.source ?? readFileSync(file, 'utf8'), names);
      }
    },

    renderString(template, data, origin, opts = {}) {
      const names = ensurePartials();
      const key = opts.shell ? `shell:${template}` : `text:${template}`;
      try {
        let fn = stringCache.get(key);
        if (!fn) {
          fn = opts.shell ? hb.compile(quoteShellTemplate(hb.parse(template)), SHELL_COMPILE_OPTIONS) : hb.compile(template, COMPILE_OPTIONS);
          if (stringCache.size >= STRING_CACHE_LIMIT) stringCache.clear();
          stringCache.set(key, fn);
        }
        return fn(revealSecrets(data));
      } catch (e) {
        throw templateError(e, origin, template, names, true);
      }
    },

    compile(roleDir, src) {
      const names = ensurePartials();
      const file = locate(roleDir, src);
      let refs: TemplateRef[];
      try {
        refs = refsOf(loadFile(file));
      } catch (e) {
        throw templateError(e, file, readFileSync(file, 'utf8'), names);
      }
      checkReferences(refs, file, names, Object.keys(helpers).concat(BUILTIN_HELPERS));
      return file;
    },
  };
}

/**
 * What is wrong with a shell-field template, if anything (the playbook loader reports it at
 * the parameter's line, before anything connects). Syntax errors are left to rendering.
 */
export function shellTemplateProblem(template: string): { message: string; hint: string } | undefined {
  let ast: hbs.AST.Program;
  try {
    ast = Handlebars.parse(template);
  } catch {
    return undefined;
  }
  try {
    quoteShellTemplate(ast);
    return undefined;
  } catch (e) {
    if (e instanceof ShellTemplateError) return { message: e.message, hint: SHELL_HINT };
    throw e;
  }
}

/**
 * The data as templates see it: every Secret reads as its value. Plain objects and arrays are
 * wrapped in a read-only view that reveals what a template touches, made once per object (a
 * render sees the host's vars and every host of `groups`: copying them all per render cost more
 * than the rendering). Views read the live object, so facts filled in later show. Objects that
 * cannot be wrapped faithfully (frozen, sealed) are copied instead.
 */
export function revealSecrets<T>(data: T): T {
  if (isSecret(data)) return data.reveal() as T;
  if (!data || typeof data !== 'object' || !(Array.isArray(data) || isPlainObject(data))) return data;
  let view = views.get(data);
  if (!view) {
    view = Object.isExtensible(data) ? new Proxy(data, REVEALING) : copyRevealed(data);
    views.set(data, view);
  }
  return view as T;
}

const views = new WeakMap<object, object>();

const REVEALING: ProxyHandler<object> = {
  get: (target, key, receiver) => revealSecrets(Reflect.get(target, key, receiver)),
  set: () => false,
  deleteProperty: () => false,
  defineProperty: () => false,
};

function copyRevealed(data: object): object {
  if (Array.isArray(data)) return data.map((v) => revealSecrets(v));
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, revealSecrets(v)]));
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const TEMPLATE_FILE = Symbol('infra.templateFile');

/** Marks errors raised inside a shared partial with the partial's file (positions are relative to it). */
function tagErrors(fn: Compiled, file: string): Compiled {
  return (...args: Parameters<Compiled>) => {
    try {
      return fn(...args);
    } catch (e) {
      if (e && typeof e === 'object' && !(TEMPLATE_FILE in e)) {
        Object.assign(e, { [TEMPLATE_FILE]: { file, source: readFileSync(file, 'utf8') } });
      }
      throw e;
    }
  };
}

/** Turns a handlebars/helper error into a UserError with file:line:col, the variable, and a hint. */
function templateError(e: unknown, file: string, source: string, partials: string[], inline = false): UserError {
  if (e instanceof UserError) return e;
  const tagged = (e as { [TEMPLATE_FILE]?: { file: string; source: string } } | null)?.[TEMPLATE_FILE];
  if (tagged) ({ file, source } = tagged);
  const err = e as { message?: string; lineNumber?: number; column?: number; endLineNumber?: number; endColumn?: number };
  const message = String(err.message ?? e).replace(/ - \d+:\d+$/, '');
  const what = inline ? `template "${source}"` : 'template';
  const posOf = (line?: number, column?: number) =>
    inline ? { file } : { file, line, col: line !== undefined && column !== undefined ? column + 1 : undefined };

  if (/not defined in/.test(message) && err.lineNumber !== undefined) {
    const variable = textAt(source, err.lineNumber, err.column, err.endLineNumber, err.endColumn) ?? message.split('"')[1];
    return new UserError(`${what}: missing variable "${variable}"`, {
      pos: posOf(err.lineNumber, err.column),
      hint: `define it (role defaults, group_vars, host_vars, play vars or -e), or write {{default ${variable} "..."}} / {{#if ${variable}}}`,
      cause: e,
    });
  }
  if (e instanceof ShellTemplateError) {
    return new UserError(`${what}: ${message}`, { pos: posOf(e.line, e.column), hint: SHELL_HINT, cause: e });
  }
  if (e instanceof HelperError) {
    return new UserError(`${what}: ${message}`, { pos: posOf(e.line, e.column), cause: e });
  }
  const parse = /^Parse error on line (\d+):/.exec(message);
  if (parse) {
    return new UserError(`${what}: syntax error\n${message}`, { pos: posOf(Number(parse[1])), cause: e });
  }
  const partial = /^The partial (.+) could not be found/.exec(message);
  if (partial) {
    return new UserError(`${what}: unknown partial "${partial[1]}"`, {
      pos: posOf(),
      hint: partials.length ? `shared partials: ${partials.join(', ')}` : 'no shared partials (templates/*.hbs) were found',
      cause: e,
    });
  }
  return new UserError(`${what}: ${message}`, { pos: posOf(err.lineNumber, err.column), cause: e });
}

/** The source text between two handlebars positions (1-based lines, 0-based columns), same line only. */
function textAt(source: string, line?: number, col?: number, endLine?: number, endCol?: number): string | undefined {
  if (line === undefined || col === undefined || endLine !== line || endCol === undefined) return undefined;
  const text = source.split('\n')[line - 1]?.slice(col, endCol).trim();
  return text || undefined;
}

/** Handlebars' precompiled spec (an object literal in JavaScript) as the object it spells. */
function evaluateSpec(spec: string): TemplateSpecification {
  return new Function(`return ${spec};`)() as TemplateSpecification;
}

/** The partials and helpers a template names, in document order (handlebars only finds out when rendering). */
function references(ast: hbs.AST.Program): TemplateRef[] {
  const refs: TemplateRef[] = [];
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(visit);
    const n = node as { type?: string; name?: hbs.AST.PathExpression; path?: hbs.AST.PathExpression; params?: unknown[]; loc?: hbs.AST.SourceLocation };
    const at = { line: n.loc?.start.line, col: n.loc ? n.loc.start.column + 1 : undefined };
    if ((n.type === 'PartialStatement' || n.type === 'PartialBlockStatement') && n.name?.type === 'PathExpression') {
      refs.push({ kind: 'partial', name: n.name.original, ...at });
    }
    // A call has arguments; {{#vars.list}}…{{/vars.list}} without any is a section, not a helper.
    const isCall = ['BlockStatement', 'SubExpression', 'MustacheStatement'].includes(n.type ?? '') && (n.params?.length ?? 0) > 0;
    if (isCall && n.path?.type === 'PathExpression') refs.push({ kind: 'helper', name: n.path.original, ...at });
    for (const [k, v] of Object.entries(n)) if (k !== 'loc') visit(v);
  };
  visit(ast);
  return refs;
}

/** `infra check`: partials and helpers a template names must exist. */
function checkReferences(refs: TemplateRef[], file: string, partials: string[], knownHelpers: string[]): void {
  for (const r of refs) {
    const pos = { file, line: r.line, col: r.col };
    if (r.kind === 'partial' && !partials.includes(r.name)) {
      throw new UserError(`template: unknown partial "${r.name}"`, {
        pos,
        hint: partials.length ? `shared partials: ${partials.join(', ')}` : 'no shared partials (templates/*.hbs) were found',
      });
    }
    if (r.kind === 'helper' && !knownHelpers.includes(r.name)) {
      throw new UserError(`template: unknown helper "${r.name}"`, { pos, hint: `helpers: ${knownHelpers.join(', ')}` });
    }
  }
}
