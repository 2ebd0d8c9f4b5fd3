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
/**
 * MAX_TOTAL_EM bounds the lengths of a formula that can blow its layout up,
 * added up: the negative ones (any direction) and the vertical ones
 * (raises, a rule's height and shift, row gaps, fraction bars, rows an
 * \arraystretch makes taller), each within MAX_LENGTH_EM alone but adding
 * up: 40 nested \raisebox{-19em} lowering text 760em, 40 row gaps of
 * -19em, 30 kerns of -19em (by hand or from macros). A positive horizontal
 * space (\quad, \hspace, a rule's width) is counted apart, against
 * MAX_WIDTH_EM. Ordinary formulas stay far below it: \! is a sixth of an
 * em, a matrix's row gaps a few points.
 */
const MAX_TOTAL_EM = 100;
/**
 * MAX_WIDTH_EM bounds the positive horizontal lengths of a formula (\quad,
 * \hspace, \kern, a rule's width), added up. Such a space widens the
 * formula as its text does, wrapping or scrolling sideways like it
 * (.math-block scrolls, an inline formula the message list), so the bound
 * is ten times MAX_TOTAL_EM: 60 aligned lines of \quad and \qquad (240em)
 * render. Without one, macros multiply a 20em kern within maxExpand: 541
 * characters of TeX drew 20,000 kerns of 20em under \Huge (995,000em,
 * 2 MB of HTML).
 */
const MAX_WIDTH_EM = 1000;

const settings = {
  throwOnError: false,
  output: 'htmlAndMathml',
  trust: false,
  strict: 'ignore',
  maxSize: MAX_LENGTH_EM,
  maxExpand: 500,
} as const;

/** TOO_LARGE is the reason a formula whose lengths are too large (tooLarge) is refused (the shown source's title). */
export const TOO_LARGE = `The lengths in this formula are too large (one below -${MAX_LENGTH_EM}em, ${MAX_TOTAL_EM}em in all of the negative and vertical ones, or ${MAX_WIDTH_EM}em in all of the positive horizontal ones); it is shown as written.`;

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
/** The units that grow with the font size (\Huge); the others are absolute. */
const relativeUnits = new Set(['em', 'ex', 'mu']);
/** KaTeX's size multipliers, by a sizing node's size less one (\tiny 1 ... \Huge 11; 6 is the normal size). */
const sizeMultipliers = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.44, 1.728, 2.074, 2.488];

/**
 * tooLarge says whether the formula's lengths are too large: one below
 * -MAX_LENGTH_EM, those counted tall (budget) beyond MAX_TOTAL_EM, or
 * those counted wide beyond MAX_WIDTH_EM. It reads
 * KaTeX's parse tree (macros expanded). TeX that does not parse is left to
 * renderTex (KaTeX shows it as an error).
 */
function tooLarge(tex: string, display: boolean): boolean {
  let tree: unknown;
  try {
    tree = (katex as unknown as { __parse(tex: string, options: object): unknown }).__parse(tex, { ...settings, displayMode: display });
  } catch {
    return false;
  }
  const { tall, wide } = budget(tree, 1, false);
  return tall > MAX_TOTAL_EM || wide > MAX_WIDTH_EM;
}

/**
 * emSize is a length's size in ems of the normal font size, under a sizing
 * of scale: a positive one capped as KaTeX caps it (maxSize, in ems of
 * the current size).
 */
function emSize(m: Measurement, scale: number): number {
  const em = m.number * (emPerUnit[m.unit] ?? 1) * (relativeUnits.has(m.unit) ? scale : 1);
  return Math.min(em, MAX_LENGTH_EM * scale);
}

/** The horizontal lengths, by node type and key: a positive one is counted wide. Any other length counts as vertical. */
const horizontalLengths = new Set(['kern.dimension', 'rule.width', 'includegraphics.width']);
/** The nodes of which one branch is drawn, by type: a \mathchoice's four styles, the HTML beside the hidden MathML. */
const oneBranchDrawn: Record<string, readonly string[]> = {
  mathchoice: ['display', 'text', 'script', 'scriptscript'],
  htmlmathml: ['html', 'mathml'],
};
/** BASELINE_SKIP_EM is the height of an array's row before \arraystretch (KaTeX's baselineskip, 12pt). */
const BASELINE_SKIP_EM = 1.2;

/**
 * Budget is what a parse tree's lengths add up to, in ems of the normal
 * font size: tall (the negative and vertical ones) and wide (the positive
 * horizontal ones).
 */
interface Budget {
  tall: number;
  wide: number;
}

const nothing: Budget = { tall: 0, wide: 0 };

function plus(a: Budget, b: Budget): Budget {
  return { tall: a.tall + b.tall, wide: a.wide + b.wide };
}

/**
 * budget adds up, in ems of the normal font size, the lengths in the parse
 * tree node that can blow a layout up: negative ones by their size,
 * vertical ones by theirs (a positive one capped as KaTeX caps it), and
 * what an \arraystretch above 1 adds to an array's rows (KaTeX caps it
 * nowhere), all tall; a positive horizontal one (horizontal: the node is
 * one) counts wide. A length below -MAX_LENGTH_EM counts as Infinity. Of a
 * node of which one branch is drawn it counts the largest branch (tall and
 * wide each). Lengths
 * in em, ex or mu are scaled by the nearest \tiny ... \Huge above them
 * (they are absolute); sizes made smaller (\scriptstyle) are counted as
 * if not. Source locations are not walked.
 */
function budget(node: unknown, scale: number, horizontal: boolean): Budget {
  if (node === null || typeof node !== 'object') return nothing;
  if (Array.isArray(node)) return node.reduce((sum: Budget, n) => plus(sum, budget(n, scale, false)), nothing);
  const n = node as Partial<Measurement> & { type?: unknown; size?: unknown; arraystretch?: unknown; body?: unknown };
  if (typeof n.number === 'number' && typeof n.unit === 'string') return counted(emSize(n as Measurement, scale), horizontal);
  const type = typeof n.type === 'string' ? n.type : '';
  const inner = type === 'sizing' && typeof n.size === 'number' ? (sizeMultipliers[n.size - 1] ?? scale) : scale;
  const branches = oneBranchDrawn[type];
  let sum: Budget = { tall: type === 'array' ? stretched(n.arraystretch, n.body, scale) : 0, wide: 0 };
  let largest = nothing;
  for (const [k, v] of Object.entries(node)) {
    if (k === 'loc') continue;
    const b = budget(v, inner, horizontalLengths.has(`${type}.${k}`));
    if (branches?.includes(k)) largest = { tall: Math.max(largest.tall, b.tall), wide: Math.max(largest.wide, b.wide) };
    else sum = plus(sum, b);
  }
  return plus(sum, largest);
}

/** counted is what a length of em ems counts in a budget. */
function counted(em: number, horizontal: boolean): Budget {
  if (em < -MAX_LENGTH_EM) return { tall: Infinity, wide: 0 };
  if (em < 0) return { tall: -em, wide: 0 };
  return horizontal ? { tall: 0, wide: em } : { tall: em, wide: 0 };
}

/** stretched is what an \arraystretch above 1 adds to the height of an array's rows (body), in ems of the normal size under a sizing of scale. */
function stretched(arraystretch: unknown, rows: unknown, scale: number): number {
  if (typeof arraystretch !== 'number' || arraystretch <= 1 || !Array.isArray(rows)) return 0;
  return (arraystretch - 1) * BASELINE_SKIP_EM * scale * rows.length;
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
