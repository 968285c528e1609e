/**
 * Playbooks: a YAML list of plays. The zod schemas here check the shape; load.ts resolves
 * roles and modules and checks each task's params against its module.
 */
import { z } from 'zod';
import type { SourcePos } from '../errors.js';
import type { Task } from '../modules/types.js';
import type { RoleDef } from './role.js';

/** `serial:` item: a host count, or a percentage of the play's hosts ("30%"). */
export const serialItemSchema = z.union([z.number().int().positive(), z.string().regex(/^\d+(\.\d+)?%$/, 'expected a number or a percentage like "30%"')], {
  errorMap: () => ({ message: 'expected a number or a percentage like "30%"' }),
});

export const roleRefSchema = z.union([
  z.string().min(1),
  z.object({ role: z.string().min(1), vars: z.record(z.unknown()).optional() }).strict(),
]);

/** Task options next to the module key in a YAML task. */
export const taskOptionsSchema = z
  .object({
    name: z.string().min(1).optional(),
    notify: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
    tags: z.array(z.string().min(1)).optional(),
    ignoreErrors: z.boolean().optional(),
  })
  .strict();
export const TASK_OPTION_KEYS = Object.keys(taskOptionsSchema.shape);

const yamlTaskSchema = z.record(z.unknown(), { invalid_type_error: 'a task is a mapping: `- module.name: {params}`' });

export const playSchema = z
  .object({
    name: z.string().min(1).optional(),
    hosts: z.string().min(1),
    roles: z.array(roleRefSchema).optional(),
    tasks: z.array(yamlTaskSchema).optional(),
    handlers: z.record(yamlTaskSchema).optional(),
    vars: z.record(z.unknown()).optional(),
    serial: z.union([serialItemSchema, z.array(serialItemSchema).min(1)]).optional(),
    maxFailPercentage: z.number().min(0).max(100).optional(),
    anyErrorsFatal: z.boolean().optional(),
    tags: z.array(z.string().min(1)).optional(),
  })
  .strict();

export const playbookSchema = z.array(playSchema, { invalid_type_error: 'a playbook is a list of plays (`- name: ...`)' }).min(1, 'a playbook needs at least one play');

export interface RoleRef {
  role: RoleDef;
  /** Vars given to this role in the play (`{role, vars}`), above play vars. */
  vars: Record<string, unknown>;
  pos?: SourcePos;
}

export interface Play {
  name: string;
  /** A limit pattern (inventory/limit.ts). */
  hosts: string;
  roles: RoleRef[];
  /** YAML tasks: params raw (strings with "{{" templated per host later). */
  tasks: Task[];
  handlers: Record<string, Task>;
  vars: Record<string, unknown>;
  /** Batch sizes: numbers or "30%" strings; the last repeats. Absent = all hosts at once. */
  serial?: (number | string)[];
  maxFailPercentage?: number;
  anyErrorsFatal: boolean;
  tags: string[];
  /** Where the play starts. */
  pos?: SourcePos;
  /** Where `hosts:` is written (for errors about the pattern). */
  hostsPos?: SourcePos;
  /** Where each play var is set (for `infra explain`). */
  varsPos?: Record<string, SourcePos>;
}

export interface Playbook {
  /** The playbook file as errors show it. */
  file: string;
  plays: Play[];
}
