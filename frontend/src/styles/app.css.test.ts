import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const css = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'app.css'), 'utf8');

// WCAG AA contrast (4.5:1 for normal-size text) of the colour pairs app.css
// uses for text, in each theme. A colour is a hex value or light-dark(a, b).

/** rootVars returns the custom properties of the first :root block. */
function rootVars(): Map<string, string> {
  const block = /:root\s*\{([^}]*)\}/.exec(css)?.[1] ?? '';
  const vars = new Map<string, string>();
  for (const m of block.replace(/\/\*[\s\S]*?\*\//g, '').matchAll(/(--[\w-]+)\s*:\s*([^;]+);/g)) vars.set(m[1]!, m[2]!.trim());
  return vars;
}

type Theme = 'light' | 'dark';

/** resolve gives a colour (a --variable or a literal) as hex in a theme. */
function resolve(vars: Map<string, string>, colour: string, theme: Theme): string {
  let v = colour.startsWith('--') ? vars.get(colour) : colour;
  if (v === undefined) throw new Error(`${colour} is not defined in :root`);
  const ld = /^light-dark\(\s*([^,]+?)\s*,\s*([^)]+?)\s*\)$/.exec(v);
  if (ld) v = theme === 'light' ? ld[1]! : ld[2]!;
  const ref = /^var\((--[\w-]+)\)$/.exec(v);
  if (ref) return resolve(vars, ref[1]!, theme);
  if (!/^#[0-9a-f]{6}$/i.test(v)) throw new Error(`${colour} is ${v}: not a 6-digit hex colour`);
  return v;
}

function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

describe('app.css text contrast (WCAG AA 4.5:1)', () => {
  const vars = rootVars();
  // [text, background]: where each is used (.form-error, .field-error,
  // .status-error/.status-interrupted, .counter.over, the offline notice on
  // the page, a dialog, a message status, the sidebar; .demo-note,
  // .status-waiting/.status-finish, .msg-note.queued likewise), and the
  // filled buttons and toasts.
  const pairs: Array<[string, string]> = [
    ...['--bg', '--bg-soft', '--bg-side'].flatMap((bg): Array<[string, string]> => [
      ['--danger', bg],
      ['--warn', bg],
      ['--fg', bg],
    ]),
    ['--accent-fg', '--accent-fill'],
    ['#ffffff', '--danger-fill'],
  ];
  for (const theme of ['light', 'dark'] as const) {
    for (const [fg, bg] of pairs) {
      it(`${fg} on ${bg} (${theme})`, () => {
        const ratio = contrast(resolve(vars, fg, theme), resolve(vars, bg, theme));
        expect(ratio, `${fg} on ${bg} in the ${theme} theme: ${ratio.toFixed(2)}:1`).toBeGreaterThanOrEqual(4.5);
      });
    }
  }

  it('filled buttons and the error toast use the fill colours', () => {
    expect(css).toMatch(/button\.primary \{[^}]*background: var\(--accent-fill\)[^}]*color: var\(--accent-fg\)/);
    expect(css).toMatch(/button\.danger \{[^}]*background: var\(--danger-fill\)/);
    expect(css).toMatch(/\.send\.stop \{[^}]*background: var\(--danger-fill\)/);
    expect(css).toMatch(/\.toast-error \{[^}]*background: var\(--danger-fill\)/);
  });
});

describe('app.css offline notice in the chat', () => {
  it('is shown only on narrow screens, where the closed sidebar (and its status line) is hidden', () => {
    expect(css).toMatch(/^\.offline-notice-region \{ display: none; \}/m);
    const narrow = css.slice(css.indexOf('@media (max-width: 760px) {'));
    expect(narrow.slice(0, narrow.indexOf('\n}'))).toContain('.offline-notice-region { display: block; }');
  });
});
