import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hasVisible } from './visible';

// The server's own table (hub/protocol/testdata/visible.json, which its
// TestHasVisible reads): a text the client sends must be one the server
// takes, and a text it takes must show. A message of U+0085 alone was sent
// (JavaScript's trim() keeps it) and refused; one of U+200B, U+2800, U+3164
// or U+FEFF was stored as a blank bubble and sent to the model.
const cases = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../../hub/protocol/testdata/visible.json'), 'utf8'),
) as { text: string; visible: boolean; what: string }[];

describe('hasVisible', () => {
  it.each(cases)('$what', ({ text, visible }) => {
    expect(hasVisible(text)).toBe(visible);
  });
});
