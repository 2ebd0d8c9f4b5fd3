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
  if (/^#[0-9a-f]{3}$/i.test(v)) v = `#${[...v.slice(1)].map((c) => c + c).join('')}`;
  if (!/^#[0-9a-f]{6}$/i.test(v)) throw new Error(`${colour} is ${v}: not a hex colour`);
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
      // Hints, labels and fields' placeholders (those fields are --bg; the
      // ::placeholder rule's colour is checked below).
      ['--fg-soft', bg],
    ]),
    // A code block's highlighted tokens.
    ...['--hl-keyword', '--hl-string', '--hl-number', '--hl-comment', '--hl-title', '--hl-attr', '--hl-built'].map((hl): [string, string] => [hl, '--code-bg']),
    // Links and .link-button (Retry in the sidebar's status line and in
    // notices, Load more, Cancel), also hovered: the plain button:hover
    // gives a .link-button --bg-hover.
    ...['--bg', '--bg-soft', '--bg-side', '--bg-hover'].map((bg): [string, string] => ['--accent', bg]),
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

  // Chromium's own placeholder grey, #757575, is 3.85:1 on the dark --bg
  // (the message box's "Shift+Enter for a new line", the parameters'
  // defaults); Firefox also dims it with an opacity.
  it('a placeholder is --fg-soft, not dimmed', () => {
    const rule = topRules().findLast((r) => r.selector === '::placeholder');
    expect(rule?.decls.get('color')).toBe('var(--fg-soft)');
    expect(rule?.decls.get('opacity')).toBe('1');
  });

  it('filled buttons and the error toast use the fill colours', () => {
    expect(css).toMatch(/button\.primary \{[^}]*background: var\(--accent-fill\)[^}]*color: var\(--accent-fg\)/);
    expect(css).toMatch(/button\.danger \{[^}]*background: var\(--danger-fill\)/);
    expect(css).toMatch(/\.send\.stop \{[^}]*background: var\(--danger-fill\)/);
    expect(css).toMatch(/\.toast-error \{[^}]*background: var\(--danger-fill\)/);
  });
});

/** Rule is a rule at the top level of app.css (those in @media blocks are left out). */
interface Rule {
  selector: string;
  decls: Map<string, string>;
}

/** topRules returns app.css's top-level rules, in order. */
function topRules(): Rule[] {
  const text = css.replace(/\/\*[\s\S]*?\*\//g, '');
  const rules: Rule[] = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{', i);
    if (open < 0) break;
    const head = text.slice(i, open).trim();
    let depth = 1;
    let j = open + 1;
    for (; j < text.length && depth > 0; j++) depth += text[j] === '{' ? 1 : text[j] === '}' ? -1 : 0;
    if (!head.startsWith('@')) {
      const decls = new Map<string, string>();
      for (const m of text.slice(open + 1, j - 1).matchAll(/([\w-]+)\s*:\s*([^;]+)/g)) decls.set(m[1]!, m[2]!.trim());
      for (const selector of head.split(',')) rules.push({ selector: selector.trim(), decls });
    }
    i = j;
  }
  return rules;
}

/**
 * Button is a button as the cascade sees it: its classes, the user action
 * pseudo-classes it is in, and the compound selectors of its ancestors
 * (within: '.auth-card') that contextual rules may name.
 */
interface Button {
  classes: string[];
  states: string[];
  within?: string[];
  /** attrs are the attribute selectors it matches: '[aria-disabled="true"]'. */
  attrs?: string[];
}

/**
 * specificity gives [ids, classes, tags] of a selector when it matches el
 * (its last compound the button, every other one among el.within), else
 * null.
 */
function specificity(selector: string, el: Button): [number, number, number] | null {
  const parts = selector.split(/\s*[\s>+~]\s*/);
  if (parts.slice(0, -1).some((p) => !el.within?.includes(p))) return null;
  const last = parts.at(-1)!;
  const tokens: string[] = last.match(/:not\([^)]*\)|[.:#]?[\w-]+|\[[^\]]*\]|\*/g) ?? [];
  if (tokens.join('') !== last) return null; // a form this reader does not know
  // A button is never :disabled here (those rules are left out).
  const has = (t: string) =>
    t.startsWith('.') ? el.classes.includes(t.slice(1)) : t.startsWith('[') ? (el.attrs ?? []).includes(t) : el.states.includes(t.slice(1));
  let n = 0;
  for (const t of tokens) {
    if (t === '*') continue;
    if (t.startsWith(':not(')) {
      if (has(t.slice(5, -1))) return null;
      n++;
    } else if (/^[.:[]/.test(t)) {
      if (!has(t)) return null;
      n++;
    } else if (t !== 'button') return null;
  }
  const rest = parts.slice(0, -1).join(' ');
  const outer = [(rest.match(/#/g) ?? []).length, (rest.match(/[.:[]/g) ?? []).length, (rest.match(/(^|\s)[a-z]/g) ?? []).length];
  return [outer[0]!, outer[1]! + n, outer[2]! + (tokens.includes('button') ? 1 : 0)];
}

/** computed returns the value of property for el: the matching rule of highest specificity, the later on a tie. */
function computed(rules: Rule[], el: Button, property: string): string | undefined {
  let best: { spec: number[]; value: string } | undefined;
  for (const r of rules) {
    const value = r.decls.get(property);
    const spec = value === undefined ? null : specificity(r.selector, el);
    if (!spec || value === undefined) continue;
    const cmp = best ? spec.findIndex((v, k) => v !== best!.spec[k]) : -1;
    if (!best || cmp < 0 || spec[cmp]! > best.spec[cmp]!) best = { spec, value };
  }
  return best?.value;
}

describe('app.css filled buttons in every state (WCAG AA 4.5:1)', () => {
  const vars = rootVars();
  const rules = topRules();
  const colour = (v: string) => /^var\((--[\w-]+)\)$/.exec(v)?.[1] ?? v;
  const buttons: Array<[string, Omit<Button, 'states'>]> = [
    ['primary button', { classes: ['primary'] }],
    ['sign-in button', { classes: ['primary'], within: ['.auth-card'] }],
    ['danger button', { classes: ['danger'] }],
    ['Stop', { classes: ['send', 'stop'] }],
  ];
  const states: string[][] = [[], ['hover'], ['active'], ['hover', 'active'], ['focus-visible'], ['hover', 'focus-visible']];
  for (const [name, button] of buttons) {
    for (const st of states) {
      const el = { ...button, states: st };
      const label = `${name}${st.length ? ` :${st.join(':')}` : ''}`;
      it(`${label}: its text on its fill, with no filter`, () => {
        const filter = computed(rules, el, 'filter');
        expect(filter === undefined || filter === 'none', `${label} has filter ${filter}: give its colours instead`).toBe(true);
        const bg = computed(rules, el, 'background');
        const fg = computed(rules, el, 'color');
        expect(bg, `${label} background`).toBeDefined();
        expect(fg, `${label} color`).toBeDefined();
        for (const theme of ['light', 'dark'] as const) {
          const ratio = contrast(resolve(vars, colour(fg!), theme), resolve(vars, colour(bg!), theme));
          expect(ratio, `${label} in the ${theme} theme: ${fg} on ${bg}, ${ratio.toFixed(2)}:1`).toBeGreaterThanOrEqual(4.5);
        }
      });
    }
  }
});

/** over gives colour (hex, or rgba(r, g, b, a)) as seen over the opaque background bg. */
function over(colour: string, bg: string): string {
  const m = /^rgba\(\s*(\d+),\s*(\d+),\s*(\d+),\s*([\d.]+)\s*\)$/.exec(colour);
  if (!m) return colour;
  const a = Number(m[4]);
  const mix = [1, 2, 3].map((k, i) => Math.round(a * Number(m[k]) + (1 - a) * parseInt(bg.slice(1 + 2 * i, 3 + 2 * i), 16)));
  return `#${mix.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

describe('app.css focus indicator (WCAG 1.4.11: 3:1)', () => {
  const vars = rootVars();
  const rules = topRules();
  // The outermost ring of --focus: the last shadow's colour.
  const ring = vars.get('--focus')!.split(/,(?![^(]*\))/).at(-1)!.trim().split(/\s+(?![^(]*\))/).at(-1)!;
  for (const theme of ['light', 'dark'] as const) {
    for (const bg of ['--bg', '--bg-soft', '--bg-side']) {
      it(`its ring on ${bg} (${theme})`, () => {
        const surface = resolve(vars, bg, theme);
        const colour = /^var\((--[\w-]+)\)$/.exec(ring)?.[1] ?? ring;
        const seen = colour.startsWith('rgba(') ? over(colour, surface) : resolve(vars, colour, theme);
        const ratio = contrast(seen, surface);
        expect(ratio, `the focus ring ${ring} on ${bg} in the ${theme} theme: ${ratio.toFixed(2)}:1`).toBeGreaterThanOrEqual(3);
      });
    }
  }

  it.each([
    ['a primary button', ['primary']],
    ['a danger button', ['danger']],
    ['Stop', ['send', 'stop']],
    ['an icon button', ['icon']],
    ['a link button', ['link-button']],
    ['Scroll to the latest message', ['to-bottom']],
  ])('%s focused from the keyboard shows it', (_, classes) => {
    expect(computed(rules, { classes, states: ['focus-visible'] }, 'box-shadow')).toBe('var(--focus)');
  });

  // Forced colours (Windows High Contrast) drop box-shadows: the ring was
  // all there was, and no focus was seen. An outline, transparent
  // otherwise, is drawn there in the system's colour.
  const outline = (selector: string) => rules.filter((r) => r.selector === selector).map((r) => r.decls.get('outline')).findLast(Boolean);
  it.each([[':focus-visible'], ['.search:focus-within'], ['.composer:focus-within']])('%s has an outline too, seen in forced colours', (selector) => {
    expect(outline(selector), `${selector} outline`).toMatch(/^[1-9]\d*px solid \S+$/);
  });

  it('a field without an outline of its own is in a wrapper that has one while it is focused', () => {
    const bare = rules.filter((r) => /^(none|0)$/.test(r.decls.get('outline') ?? ''));
    expect(bare.map((r) => r.selector)).toEqual(['.search input', '.composer textarea']);
    for (const r of bare) {
      const wrapper = `${r.selector.split(/\s+/)[0]}:focus-within`;
      expect(outline(wrapper), `${wrapper} outline`).toMatch(/^[1-9]\d*px solid \S+$/);
    }
  });
});

describe('app.css offline notice in the chat', () => {
  it('is shown only on narrow screens, where the closed sidebar (and its status line) is hidden', () => {
    expect(css).toMatch(/^\.offline-notice-region \{ display: none; \}/m);
    const narrow = css.slice(css.indexOf('@media (max-width: 760px) {'));
    expect(narrow.slice(0, narrow.indexOf('\n}'))).toContain('.offline-notice-region { display: block; }');
  });
});

describe('app.css toasts on narrow screens', () => {
  // Errors stay until dismissed: at the top centre they covered a phone's
  // chat header (title, model picker, menu). The heights come from
  // useHeightVar (Toasts.test.tsx); the e2e suite checks the layout.
  it('stand above the composer, and the message list leaves room for them below its newest message', () => {
    const narrow = css.slice(css.indexOf('@media (max-width: 760px) {\n  .only-narrow'));
    const block = narrow.slice(0, narrow.indexOf('\n}'));
    expect(block).toMatch(/\.toasts \{ top: auto; bottom: calc\(var\(--composer-height, 0px\) \+ 8px\);/);
    expect(block).toMatch(/\.messages-inner \{ padding-bottom: calc\(6px \+ var\(--toasts-height, 0px\)\); \}/);
  });
});

describe('app.css long conversations', () => {
  // Every update of a streaming answer laid out every message (2,000
  // messages: some 44,000 nodes). Finished messages off screen are skipped,
  // the streaming one never (it grows at the bottom the reader follows),
  // nor the last few (an answer that just ended may not have recorded its
  // height yet).
  it('skip the layout and paint of finished messages off screen, where the browser anchors scrolling', () => {
    const block = css.slice(css.indexOf('@supports (overflow-anchor: auto) {'));
    expect(block.slice(0, block.indexOf('\n}'))).toMatch(/\.msg:not\(\[data-status="streaming"\]\):not\(:nth-last-child\(-n\+4\)\) \{ content-visibility: auto; \}/);
  });

  // A message taking content-visibility on screen is laid out for a frame
  // at its last remembered height, or at the estimate if it has none: a
  // 3,000 px answer leaving the last four at a send after a short exchange
  // was laid out at 240 px, Chromium clamped the view 2,400 px up and the
  // list stopped following (e2e: chat.test.mjs). Chromium records the
  // height of any element with an auto intrinsic size while it is rendered.
  it('give every message, not only those skipped, a remembered intrinsic height, recorded while it is rendered', () => {
    const block = css.slice(css.indexOf('@supports (overflow-anchor: auto) {'));
    expect(block.slice(0, block.indexOf('\n}'))).toMatch(/^ {2}\.msg \{ contain-intrinsic-block-size: auto \d+px; \}$/m);
  });

  it('anchor scrolling only while the reader is away from the bottom: following, the list pins the view itself', () => {
    expect(css).toMatch(/^\.messages:not\(\.away\) \{ overflow-anchor: none; \}/m);
  });

  it('keep room inside each message for focus rings, which its paint containment would clip, without moving it', () => {
    const rule = /^\.msg \{ padding: (\d+)px; margin: -(\d+)px -(\d+)px (\d+)px; \}/m.exec(css);
    expect(rule).not.toBeNull();
    const [, pad, top, side, bottom] = rule!.map(Number);
    expect([top, side, pad! + bottom!]).toEqual([pad, pad, 22]);
    expect(pad).toBeGreaterThanOrEqual(4); // --focus reaches 4 px out
  });
});

/** mediaRules returns the rules inside app.css's @media blocks for query, by selector (later ones over earlier). */
function mediaRules(query: string): Map<string, Map<string, string>> {
  const text = css.replace(/\/\*[\s\S]*?\*\//g, '');
  const rules = new Map<string, Map<string, string>>();
  for (let at = text.indexOf(`@media ${query} {`); at >= 0; at = text.indexOf(`@media ${query} {`, at + 1)) {
    let depth = 1;
    let j = text.indexOf('{', at) + 1;
    const start = j;
    for (; j < text.length && depth > 0; j++) depth += text[j] === '{' ? 1 : text[j] === '}' ? -1 : 0;
    for (const m of text.slice(start, j - 1).matchAll(/([^{}]+)\{([^}]*)\}/g)) {
      for (const selector of m[1]!.split(',').map((x) => x.trim())) {
        const decls = rules.get(selector) ?? new Map<string, string>();
        for (const d of m[2]!.matchAll(/([\w-]+)\s*:\s*([^;]+)/g)) decls.set(d[1]!, d[2]!.trim());
        rules.set(selector, decls);
      }
    }
  }
  return rules;
}

describe('app.css aria-disabled buttons', () => {
  // Send, Edit and Regenerate keep the focus while unusable: aria-disabled.
  it('look as disabled ones do', () => {
    const rules = topRules();
    const decls = (selector: string) => rules.find((r) => r.selector === selector)?.decls;
    expect(decls('button[aria-disabled="true"]')?.get('opacity')).toBe(decls('button:disabled')?.get('opacity'));
    expect(decls('button[aria-disabled="true"]:hover')?.get('filter')).toBe('none'); // not .send's brightened hover
  });

  it.each([
    ['Send', ['send']],
    ['an icon button (Edit, Regenerate)', ['icon']],
  ])('%s does not brighten on hover', (_name, classes) => {
    const rules = topRules();
    const el: Button = { classes, states: ['hover'], attrs: ['[aria-disabled="true"]'] };
    const filter = computed(rules, el, 'filter');
    expect(filter === undefined || filter === 'none', `filter ${filter}`).toBe(true);
  });

  it.each([
    ['Send', ['send']],
    ['the edit box\'s Send', ['primary']],
  ])('%s keeps its fill when hovered or pressed', (_name, classes) => {
    // A hover rule of enabled buttons (button:hover's, the primary's)
    // made the blank composer's Send pale, its arrow nearly gone, and the
    // edit box's look pressable.
    const rules = topRules();
    const attrs = ['[aria-disabled="true"]'];
    const resting = computed(rules, { classes, states: [], attrs }, 'background');
    for (const states of [['hover'], ['active'], ['hover', 'active']]) {
      expect(computed(rules, { classes, states, attrs }, 'background'), states.join(':')).toBe(resting);
    }
  });
});

describe('app.css text boxes that grow with their text (useAutoGrow)', () => {
  // A box resized by hand was set back to its text's height at the next
  // keystroke or width change: they offer no resize handle.
  it.each([['.composer textarea'], ['.edit-box textarea']])('%s has no resize handle', (selector) => {
    const rules = topRules().filter((r) => r.selector === selector && r.decls.has('resize'));
    expect(rules.at(-1)?.decls.get('resize')).toBe('none');
  });
});

describe('app.css answer headings', () => {
  // lib/markdown.ts renders # as an h3 (the page's h1 is the conversation's
  // title), #### and below as an h6: sizes from # down, none under the text's.
  it('h3 to h6 shrink from # to ####, none smaller than the text', () => {
    const rules = topRules();
    const size = (tag: string) => parseFloat(rules.filter((r) => r.selector === `.md ${tag}`).map((r) => r.decls.get('font-size')).findLast(Boolean) ?? 'NaN');
    const sizes = ['h3', 'h4', 'h5', 'h6'].map(size);
    expect(sizes).toEqual([...sizes].sort((a, b) => b - a));
    expect(sizes[0]).toBeGreaterThan(1);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(1);
  });
});

describe('app.css under reduced motion', () => {
  // .sidebar.open's own transition outranked the media query's .sidebar:
  // the narrow screens' drawer still slid in.
  it('every transition is none, rule for rule (the same selector, not a less specific one)', () => {
    const reduced = mediaRules('(prefers-reduced-motion: reduce)');
    const moving = [...topRules().map((r): [string, Map<string, string>] => [r.selector, r.decls]), ...mediaRules('(max-width: 760px)')].filter(([, d]) => (d.get('transition') ?? 'none') !== 'none');
    expect(moving.map(([s]) => s)).toContain('.sidebar.open');
    for (const [selector] of moving) expect(reduced.get(selector)?.get('transition'), `${selector} under reduced motion`).toBe('none');
  });
});

describe('app.css on touch screens', () => {
  // The phone review measured them at 24-36 px: a finger missed them.
  it.each([['button.icon'], ['.send'], ['.to-bottom'], ['.code-copy']])('%s is at least 44 x 44 px under a coarse pointer', (selector) => {
    const decls = mediaRules('(pointer: coarse)').get(selector);
    expect(decls, `${selector} has no (pointer: coarse) rule`).toBeDefined();
    for (const [min, size] of [['min-width', 'width'], ['min-height', 'height']] as const) {
      const value = decls!.get(min) ?? decls!.get(size);
      expect(value, `${selector} ${size}`).toMatch(/^\d+px$/);
      expect(parseFloat(value!), `${selector} ${size}`).toBeGreaterThanOrEqual(44);
    }
  });

  it('a phone\'s header keeps its title beside the 44 px Open conversations button (and their 8 px gap): it went to a row of its own', () => {
    const basis = mediaRules('(max-width: 760px) and (pointer: coarse)').get('.chat-title')?.get('flex-basis');
    const gap = parseFloat(/\.chat-head \{[^}]*gap: (\d+)px/.exec(css)?.[1] ?? 'NaN');
    expect(basis).toMatch(/^calc\(100% - \d+px\)$/);
    expect(Number(/(\d+)px/.exec(basis!)![1])).toBeGreaterThanOrEqual(44 + gap);
  });

  it('a drag from the header or the drawer does not start pull-to-refresh: the page and the conversation list contain their overscroll', () => {
    const rules = topRules();
    for (const selector of ['html', 'body', '.conv-list']) {
      const value = rules.filter((r) => r.selector === selector).map((r) => r.decls.get('overscroll-behavior-y') ?? r.decls.get('overscroll-behavior')).findLast(Boolean);
      expect(value, `${selector} overscroll-behavior-y`).toMatch(/^(contain|none)$/);
    }
  });
});

// A copy of part of an answer leaves out a code block's language label and
// Copy button (the browser copies nothing that is not selectable).
describe('app.css code block head', () => {
  it('is not selectable', () => {
    const rule = /(?:^|\n)\.code-head\s*\{([^}]*)\}/.exec(css)?.[1] ?? '';
    expect(rule).toMatch(/(?:^|;)\s*user-select:\s*none\s*(?:;|$)/);
    expect(rule).toMatch(/(?:^|;)\s*-webkit-user-select:\s*none\s*(?:;|$)/); // Safari's only form
  });
});

// A select is as wide as its longest option by itself: at 360 px a long
// model name (deepseek-ai/DeepSeek-R1-Distill-Llama-70B) pushed Settings and
// Export past the screen's edge, hidden by .layout's overflow, not tappable,
// focused unseen by Tab.
describe('app.css chat header on narrow screens', () => {
  const narrow = mediaRules('(max-width: 760px)');
  it('lets the model picker shrink below its longest option, within the tools row', () => {
    expect(narrow.get('.chat-tools')?.get('min-width'), '.chat-tools min-width').toBe('0');
    const picker = narrow.get('.model-picker');
    expect(picker?.get('min-width'), '.model-picker min-width').toBe('0');
    expect(picker?.get('flex'), '.model-picker flex').toMatch(/^\d+ [1-9]\d* /);
  });

  it('ends a model name cut by the picker in an ellipsis', () => {
    const value = topRules().filter((r) => r.selector === '.model-picker').map((r) => r.decls.get('text-overflow')).findLast(Boolean);
    expect(value).toBe('ellipsis');
  });
});

// A text field's or select's border is often its only edge (the sign-in
// card's fields, the message box): 3:1 against the surfaces it sits on and
// encloses (WCAG 1.4.11). --border, for dividers, is 1.39:1 (light) and
// 1.47:1 (dark).
describe('app.css field borders (WCAG 1.4.11: 3:1)', () => {
  const vars = rootVars();
  const rules = topRules();
  const fields = ['.auth-card input', '.search', '.model-picker', '.composer', '.system-prompt', '.param input', '.account-section input'];
  for (const selector of fields) {
    const border = rules.filter((r) => r.selector === selector).map((r) => r.decls.get('border-color') ?? r.decls.get('border')).findLast(Boolean);
    const colour = /var\((--[\w-]+)\)|#[0-9a-f]{3,6}\b/i.exec(border ?? '');
    for (const theme of ['light', 'dark'] as const) {
      it(`${selector} (${theme})`, () => {
        expect(colour, `${selector} border ${border}`).not.toBeNull();
        for (const bg of ['--bg', '--bg-soft', '--bg-side']) {
          const ratio = contrast(resolve(vars, colour![1] ?? colour![0], theme), resolve(vars, bg, theme));
          expect(ratio, `${selector}'s border ${border} on ${bg} in the ${theme} theme: ${ratio.toFixed(2)}:1`).toBeGreaterThanOrEqual(3);
        }
      });
    }
  }
});

describe('app.css stacking of toasts', () => {
  // A persistent error toast over an open modal dialog covered its fields,
  // and the dialog's focus trap kept the keyboard from its Dismiss button.
  const rules = topRules();
  const narrow = mediaRules('(max-width: 760px)');
  const z = (selector: string) => {
    const value = narrow.get(selector)?.get('z-index') ?? rules.filter((r) => r.selector === selector).map((r) => r.decls.get('z-index')).findLast(Boolean);
    expect(value, `${selector} z-index`).toMatch(/^\d+$/);
    return Number(value);
  };
  it('are under a dialog\'s backdrop', () => {
    expect(z('.toasts')).toBeLessThan(z('.backdrop'));
  });
  it('are over the narrow screens\' drawer and its scrim', () => {
    expect(z('.toasts')).toBeGreaterThan(z('.sidebar'));
    expect(z('.toasts')).toBeGreaterThan(z('.scrim'));
  });
});
