/** bin/compiled.mjs (plain JavaScript: bin/infra runs it before anything is compiled). */
export function freshBuild(root: string): string | undefined;
