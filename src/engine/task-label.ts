import type { z } from 'zod';
import type { BoundTask } from './types.js';

/** "files.template /etc/ssh/sshd_config.d/10-infra.conf", or the task's own name. */
export function taskLabel(bt: BoundTask, params: unknown): string {
  if (bt.task.name) return bt.task.name;
  let what = '';
  try {
    if (params !== undefined) what = bt.task.module.describe(params);
  } catch {
    what = '';
  }
  return what ? `${bt.task.module.name} ${what}` : bt.task.module.name;
}

export function describeParamsError(bt: BoundTask, err: z.ZodError): string {
  const where = bt.task.origin ? `${bt.task.origin.file}${bt.task.origin.line ? `:${bt.task.origin.line}` : ''}: ` : '';
  const issues = err.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`).join('; ');
  return `${where}invalid parameters for ${bt.task.module.name}: ${issues}`;
}
