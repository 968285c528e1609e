/**
 * DOT → SVG with Graphviz compiled to WebAssembly (@hpcc-js/wasm-graphviz): the same layout
 * engine as the `dot` binary, with nothing to install. Loaded on first use only, so no other
 * command pays for it.
 */
let loading: Promise<{ dot(src: string): string }> | undefined;

export async function renderSvg(dot: string): Promise<string> {
  loading ??= import('@hpcc-js/wasm-graphviz').then(({ Graphviz }) => Graphviz.load());
  const graphviz = await loading;
  return graphviz.dot(dot);
}
