/** "Billion laughs" hosts.yaml: nine levels of nine aliases, 9^9 strings from under 500 bytes. */
export function aliasBomb(): string {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  const names = 'abcdefghi';
  for (let i = 1; i < names.length; i++) lines.push(`${names[i]}: &${names[i]} [${Array(9).fill(`*${names[i - 1]}`).join(',')}]`);
  return `hosts:\n  h1:\n    address: 10.0.0.1\n    vars:\n${lines.map((l) => `      ${l}\n`).join('')}`;
}
