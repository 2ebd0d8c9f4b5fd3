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

/** renderTex renders TeX to HTML; bad TeX is shown as an error, never thrown. */
export function renderTex(tex: string, display: boolean): string {
  return katex.renderToString(tex, {
    displayMode: display,
    throwOnError: false,
    output: 'htmlAndMathml',
    trust: false,
    strict: 'ignore',
    maxSize: 20,
    maxExpand: 500,
  });
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
