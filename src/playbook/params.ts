/**
 * Templating of YAML task parameters: every string holding "{{" is a Handlebars template over
 * the host's data, rendered per host before connecting. Tasks and handlers go through this one
 * path. Shell fields are rendered in shell mode: each {{…}} becomes one quoted word
 * (render/shell-template.ts).
 */
import { formatPos } from '../errors.js';
import type { Task } from '../modules/types.js';

/**
 * Parameters that are shell commands in every module that has them: command.run's cmd,
 * unless and onlyIf, the `validate` command of every file writer, confirm.files' activate
 * and rollback.
 */
export const SHELL_PARAMS: ReadonlySet<string> = new Set(['cmd', 'unless', 'onlyIf', 'validate', 'activate', 'rollback']);

export type RenderString = (template: string, data: Record<string, unknown>, origin: string, opts?: { shell?: boolean }) => string;

/** The task's params with every templated string rendered (deeply); shell fields quoted. */
export function renderTaskParams(task: Task, data: Record<string, unknown>, render: RenderString): unknown {
  const origin = task.origin ? formatPos(task.origin) : task.module.name;
  const walk = (v: unknown, shell: boolean): unknown => {
    if (typeof v === 'string') return v.includes('{{') ? render(v, data, origin, { shell }) : v;
    if (Array.isArray(v)) return v.map((x) => walk(x, false));
    if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, false)]));
    }
    return v;
  };
  const params = task.params;
  if (!params || typeof params !== 'object' || Array.isArray(params)) return walk(params, false);
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, walk(v, SHELL_PARAMS.has(k))]));
}
