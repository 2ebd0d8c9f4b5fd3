// A marked extension for TeX math rendered by KaTeX: `$...$` inline,
// `$$...$$` display. Dollar signs used as currency stay text: like Pandoc, an
// opening `$` must be followed by a non-space, a closing `$` preceded by a
// non-space and not followed by a digit, so "$5 and $10" is not math.

import katex from 'katex';
import type { MarkedExtension, Tokens } from 'marked';

interface MathToken extends Tokens.Generic {
  type: 'mathBlock' | 'mathInline';
  raw: string;
  text: string;
  display: boolean;
}

const blockRule = /^\$\$([\s\S]+?)\$\$[ \t]*(?:\n+|$)/;
const inlineDisplayRule = /^\$\$(?!\$)([\s\S]+?)\$\$/;
const inlineRule = /^\$(?![\s$])((?:\\[\s\S]|[^\\$\n])+?)\$(?!\d)/;

/**
 * MAX_LENGTH_EM is the largest length, in ems, a formula may give (KaTeX's
 * maxSize). KaTeX caps only positive sizes with it: a negative one
 * (\rule[-1e7em], \raisebox, \hspace, \mkern, a row gap) was drawn as
 * given, a message 33,554,432 px tall or text pushed far out sideways.
 */
const MAX_LENGTH_EM = 20;

const settings = {
  throwOnError: false,
  output: 'htmlAndMathml',
  trust: false,
  strict: 'ignore',
  maxSize: MAX_LENGTH_EM,
  maxExpand: 500,
} as const;

/** TOO_LARGE is the reason a formula with a length beyond MAX_LENGTH_EM is refused (the shown source's title). */
export const TOO_LARGE = `A length in this formula is larger than ${MAX_LENGTH_EM}em; it is shown as written.`;

/** renderTex renders TeX to HTML; bad TeX, or TeX with too large a length, is shown as its source, never thrown. */
export function renderTex(tex: string, display: boolean): string {
  if (tooLarge(tex, display)) return refused(tex, TOO_LARGE);
  return katex.renderToString(tex, { ...settings, displayMode: display });
}

/**
 * refused is the markup KaTeX gives TeX it cannot parse (throwOnError
 * false): the source as text in a katex-error span, the reason its title.
 */
function refused(tex: string, reason: string): string {
  return `<span class="katex-error" title="${escape(reason)}" style="color:#cc0000">${escape(tex)}</span>`;
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A length in KaTeX's parse tree. */
interface Measurement {
  number: number;
  unit: string;
}

/**
 * emPerUnit converts a unit to ems at the normal size (KaTeX's units.ts:
 * 10 pt to the em, 18 mu to the em, an ex of 0.431 em).
 */
const emPerUnit: Record<string, number> = {
  em: 1,
  ex: 0.431,
  mu: 1 / 18,
  pt: 1 / 10,
  mm: 7227 / 2540 / 10,
  cm: 7227 / 254 / 10,
  in: 72.27 / 10,
  bp: 803 / 800 / 10,
  pc: 12 / 10,
  dd: 1238 / 1157 / 10,
  cc: 14856 / 1157 / 10,
  nd: 685 / 642 / 10,
  nc: 1370 / 107 / 10,
  sp: 1 / 65536 / 10,
  px: 803 / 800 / 10,
};

/**
 * tooLarge says whether the formula gives a length (a kern, a rule, a
 * raise, a row gap, a fraction bar...) whose size exceeds MAX_LENGTH_EM
 * either way. It reads KaTeX's parse tree (macros expanded) for every
 * {number, unit}, whatever node holds it. TeX that does not parse is left
 * to renderTex (KaTeX shows it as an error).
 */
function tooLarge(tex: string, display: boolean): boolean {
  let tree: unknown;
  try {
    tree = (katex as unknown as { __parse(tex: string, options: object): unknown }).__parse(tex, { ...settings, displayMode: display });
  } catch {
    return false;
  }
  return someLength(tree, (m) => Math.abs(m.number * (emPerUnit[m.unit] ?? 1)) > MAX_LENGTH_EM);
}

/** someLength says whether a length in the parse tree node satisfies test; source locations are not walked. */
function someLength(node: unknown, test: (m: Measurement) => boolean): boolean {
  if (node === null || typeof node !== 'object') return false;
  if (Array.isArray(node)) return node.some((n) => someLength(n, test));
  const m = node as Partial<Measurement>;
  if (typeof m.number === 'number' && typeof m.unit === 'string' && test(m as Measurement)) return true;
  return Object.entries(node).some(([k, v]) => k !== 'loc' && someLength(v, test));
}

/** mathExtension returns the marked extension. */
export function mathExtension(): MarkedExtension {
  return {
    extensions: [
      {
        name: 'mathBlock',
        level: 'block',
        start(src: string) {
          const m = /(?:^|\n)\$\$/.exec(src);
          return m ? m.index + (m[0].startsWith('\n') ? 1 : 0) : undefined;
        },
        tokenizer(src: string): MathToken | undefined {
          const m = blockRule.exec(src);
          if (!m || !m[1]?.trim()) return undefined;
          return { type: 'mathBlock', raw: m[0], text: m[1].trim(), display: true };
        },
        renderer(token) {
          return `<div class="math-block">${renderTex((token as MathToken).text, true)}</div>\n`;
        },
      },
      {
        name: 'mathInline',
        level: 'inline',
        start(src: string) {
          const i = src.indexOf('$');
          return i >= 0 ? i : undefined;
        },
        tokenizer(src: string): MathToken | undefined {
          const d = inlineDisplayRule.exec(src);
          if (d && d[1]?.trim()) return { type: 'mathInline', raw: d[0], text: d[1].trim(), display: true };
          const m = inlineRule.exec(src);
          if (!m || !m[1] || /\s$/.test(m[1])) return undefined;
          return { type: 'mathInline', raw: m[0], text: m[1], display: false };
        },
        renderer(token) {
          const t = token as MathToken;
          return renderTex(t.text, t.display);
        },
      },
    ],
  };
}
