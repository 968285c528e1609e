/**
 * The arrows between rooms point down: the YAML layer (src/yaml) sits under the inventory and
 * playbook loaders and secrets/ imports neither of them. A file that imports upwards fails here.
 */
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const SRC = join(__dirname, '..', '..', '..', 'src');

/** The rooms (src/<room>/) a room's files import from, besides itself. */
function importedRooms(room: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const file of readdirSync(join(SRC, room)).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(SRC, room, file), 'utf8');
    for (const m of text.matchAll(/from '\.\.\/([a-z-]+)\//g)) {
      const list = out.get(m[1]) ?? [];
      list.push(`${room}/${file}`);
      out.set(m[1], list);
    }
  }
  return out;
}

describe('layering', () => {
  it.each([
    ['yaml', ['inventory', 'playbook', 'engine', 'cli', 'audit', 'transport']],
    ['secrets', ['inventory', 'playbook', 'yaml', 'engine', 'cli']],
  ])('src/%s imports none of %j', (room, forbidden) => {
    const rooms = importedRooms(room);
    const upward = forbidden.flatMap((r) => (rooms.get(r) ?? []).map((file) => `${file} → ${r}`));
    expect(upward).toEqual([]);
  });
});
