/**
 * Module resolve hook, compiled build only (registered by role-import.ts): a role outside
 * infra's package that imports 'infra' gets the compiled library the CLI runs, not the
 * TypeScript sources the package's exports name.
 */
let infraUrl = '';

export function initialize(data: { infra: string }): void {
  infraUrl = data.infra;
}

export async function resolve(
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => Promise<unknown>,
): Promise<unknown> {
  if (specifier === 'infra') return { url: infraUrl, shortCircuit: true };
  return next(specifier, context);
}
