// Markdown for model output: the seed's marked + marked-highlight +
// highlight.js settings (breaks on, language from the fence, plaintext when
// unknown, escaped and unhighlighted without a language), hardened: raw HTML
// is shown as text, links and images are filtered, and the HTML is passed
// through DOMPurify. Rendering works block by block with a cache. A growing
// answer is rendered incrementally (see renderGrowing): only its unsettled
// tail is lexed again, and an open code block is shown unhighlighted, its
// text sanitized once in chunks, so an update costs about the new text, not
// the whole answer or block.

import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/common';
import dockerfile from 'highlight.js/lib/languages/dockerfile';
import nginx from 'highlight.js/lib/languages/nginx';
import powershell from 'highlight.js/lib/languages/powershell';
import { Marked, type Token, type Tokens, type TokensList } from 'marked';
import { markedHighlight } from 'marked-highlight';
import { decodeEntities } from './entities';
import { imageHost } from './images';
import { mathExtension } from './math';

hljs.registerLanguage('dockerfile', dockerfile);
hljs.registerLanguage('nginx', nginx);
hljs.registerLanguage('powershell', powershell);

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** escapeHtml escapes text for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => escapes[c] ?? c);
}

/** fenceLang returns the first word of a fence's info string. */
function fenceLang(info: string | undefined): string {
  return /\S*/.exec(info ?? '')?.[0] ?? '';
}

/**
 * safeHref returns the URL if it is http(s), mailto or relative, else null.
 * href is a destination with its character references decoded
 * (decodeEntities), as the browser will read the attribute: jav&#x61;script:
 * is judged as javascript:.
 */
export function safeHref(href: string): string | null {
  const probe = href.replace(/[\u0000-\u0020\u007f-\u009f]/g, '').toLowerCase();
  const scheme = /^([a-z][a-z0-9+.-]*):/.exec(probe);
  if (scheme) return ['http', 'https', 'mailto'].includes(scheme[1]!) ? href : null;
  if (probe.startsWith('//')) return 'https:' + href.trim();
  if (/&#|&[a-z]+;/i.test(probe)) return null; // a reference left after decoding (written twice, &amp;amp;): not worth the risk
  return href;
}

function isHttpsUrl(src: string): boolean {
  return /^https:\/\/[^\s]+$/i.test(src.trim());
}

/**
 * The characters lexed, highlighted and sanitized since the last
 * resetMarkdownWork, for tests that pin what one update of a growing
 * answer costs without timing it.
 */
const work = { lexed: 0, highlighted: 0, sanitized: 0 };

/** markdownWork says how many characters were lexed, highlighted and sanitized (tests). */
export function markdownWork(): { lexed: number; highlighted: number; sanitized: number } {
  return { ...work };
}

/** resetMarkdownWork sets the work counters to zero (tests). */
export function resetMarkdownWork(): void {
  work.lexed = work.highlighted = work.sanitized = 0;
}

/** codeBlockHtml is a fenced code block's markup around its (escaped or highlighted) code. */
function codeBlockHtml(lang: string, body: string): string {
  const cls = lang ? `hljs language-${escapeHtml(lang)}` : 'hljs';
  const label = escapeHtml(lang || 'text');
  return (
    `<div class="code-block" dir="ltr"><div class="code-head"><span class="code-lang">${label}</span>` +
    `<button type="button" class="code-copy" aria-label="Copy ${label} code">Copy</button></div>` +
    `<pre><code class="${cls}">${body}\n</code></pre></div>\n`
  );
}

/** ANSWER_HEADING_SHIFT is how many levels an answer's headings go down: # is an h3. */
const ANSWER_HEADING_SHIFT = 2;

function createMarked(): Marked {
  const md = new Marked(
    markedHighlight({
      langPrefix: 'hljs language-',
      highlight(code, lang) {
        if (!code && !lang) return '';
        if (!lang) return code;
        work.highlighted += code.length;
        const language = hljs.getLanguage(lang) ? lang : 'plaintext';
        return hljs.highlight(code, { language, ignoreIllegals: true }).value;
      },
    }),
  );
  md.use({ gfm: true, breaks: true });
  md.use(mathExtension());
  md.use({
    renderer: {
      // Raw HTML in model output is text, never markup (the seed used he.encode).
      html(token: Tokens.HTML | Tokens.Tag) {
        return escapeHtml(token.text);
      },
      // An answer's headings rank under the page's (the conversation's
      // title is its h1): # is an h3, and so on, h6 at most.
      heading(token: Tokens.Heading) {
        const level = Math.min(token.depth + ANSWER_HEADING_SHIFT, 6);
        return `<h${level}>${this.parser.parseInline(token.tokens)}</h${level}>\n`;
      },
      code(token: Tokens.Code) {
        const body = (token.escaped ? token.text : escapeHtml(token.text)).replace(/\n$/, '');
        return codeBlockHtml(fenceLang(token.lang), body);
      },
      // A task item's box is a picture with its state in words, not an
      // <input>: inputs stay forbidden (sanitize), and marked drops the
      // [x] / [ ] text, so without this a done item and an open one look
      // and read the same.
      checkbox(token: Tokens.Checkbox) {
        const [glyph, label] = token.checked ? ['\u2611', 'done'] : ['\u2610', 'not done'];
        return `<span class="task-box${token.checked ? ' task-done' : ''}" role="img" aria-label="${label}">${glyph}</span> `;
      },
      // marked gives destinations, titles and image descriptions with their
      // character references as written: they are decoded (as CommonMark
      // reads them) before they are judged, and escaped once.
      link(token: Tokens.Link) {
        const inner = this.parser.parseInline(token.tokens);
        const href = safeHref(decodeEntities(token.href));
        if (href === null) return inner;
        const title = token.title ? ` title="${escapeHtml(decodeEntities(token.title))}"` : '';
        return `<a href="${escapeHtml(href)}"${title} target="_blank" rel="noopener noreferrer">${inner}</a>`;
      },
      // A remote image becomes a button naming its host: nothing is fetched
      // until the reader clicks it (lib/images.ts makes the <img> then).
      image(token: Tokens.Image) {
        const src = decodeEntities(token.href).trim();
        const text = decodeEntities(token.text);
        const host = isHttpsUrl(src) ? imageHost(src) : null;
        if (!host) return escapeHtml(text);
        const alt = text ? `: ${escapeHtml(text)}` : '';
        return (
          `<button type="button" class="remote-image" data-src="${escapeHtml(src)}" data-alt="${escapeHtml(text)}"` +
          ` title="Load ${escapeHtml(src)}">Image from ${escapeHtml(host)}${alt}. Click to load it from that site.</button>`
        );
      },
    },
  });
  return md;
}

const md = createMarked();

let purifier: ReturnType<typeof DOMPurify> | null = null;

/** The elements of an answer that take the direction of their own text (see textDirection). */
const OWN_DIRECTION = new Set(['P', 'LI', 'UL', 'OL', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'BLOCKQUOTE', 'TABLE', 'TH', 'TD']);

/**
 * textDirection is the dir an element of an answer is given: 'auto' for a
 * paragraph, heading, list, item, quote, table or cell, laid out right to
 * left when its first strong character is Arabic or Hebrew, each for
 * itself (an answer may mix scripts; a Hebrew word's trailing "!" was
 * shown at its start), and for inline code (isolated: its punctuation is
 * not reordered with the text around it); 'ltr' for math, and code blocks
 * (codeBlockHtml), which read left to right whatever the text around them.
 */
function textDirection(el: Element): 'auto' | 'ltr' | null {
  if (OWN_DIRECTION.has(el.tagName)) return 'auto';
  if (el.tagName === 'CODE') return el.parentElement?.tagName === 'PRE' ? null : 'auto';
  if (['katex', 'katex-error', 'math-block'].some((c) => el.classList.contains(c))) return 'ltr';
  return null;
}

function getPurifier(): ReturnType<typeof DOMPurify> {
  if (purifier) return purifier;
  const p = DOMPurify(window);
  p.addHook('afterSanitizeAttributes', (node) => {
    const el = node as Element;
    if (el.tagName === 'A') {
      if (el.hasAttribute('href')) {
        el.setAttribute('target', '_blank');
        el.setAttribute('rel', 'noopener noreferrer');
      }
    }
    const dir = textDirection(el);
    if (dir) el.setAttribute('dir', dir);
  });
  purifier = p;
  return p;
}

/** sanitize passes HTML through DOMPurify with this app's policy. */
export function sanitize(html: string): string {
  work.sanitized += html.length;
  return getPurifier().sanitize(html, {
    ADD_ATTR: ['target', 'encoding'],
    ADD_TAGS: ['semantics', 'annotation'],
    FORBID_TAGS: ['img', 'picture', 'source', 'video', 'audio', 'style', 'form', 'input', 'textarea', 'select', 'iframe', 'frame', 'object', 'embed', 'link', 'meta', 'base'],
    FORBID_ATTR: ['srcdoc', 'formaction', 'action', 'xlink:href'],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#|\/|\.\.?\/|[^:/?#]*(?:[/?#]|$))/i,
  });
}

/**
 * The block cache, least recently used first, bounded by entries and by the
 * characters it holds (source plus HTML, about 8 MB at two bytes a
 * character at most): a few long blocks must not pin hundreds of megabytes.
 */
const CACHE_ENTRIES = 3000;
const CACHE_CHARS = 4_000_000;
const cache = new Map<string, string>();
let cacheChars = 0;

function remember(raw: string, html: string): void {
  cache.set(raw, html);
  cacheChars += raw.length + html.length;
  while ((cache.size > CACHE_ENTRIES || cacheChars > CACHE_CHARS) && cache.size > 1) {
    const [oldRaw, oldHtml] = cache.entries().next().value as [string, string];
    cache.delete(oldRaw);
    cacheChars -= oldRaw.length + oldHtml.length;
  }
}

function cached(raw: string, keep: boolean): string {
  const hit = cache.get(raw);
  if (hit !== undefined) {
    cache.delete(raw);
    cache.set(raw, hit);
    return hit;
  }
  work.lexed += raw.length;
  const html = sanitize(md.parse(raw, { async: false }));
  if (keep) remember(raw, html);
  return html;
}

function lex(src: string): TokensList {
  work.lexed += src.length;
  return md.lexer(src);
}

/** A top-level block: its source (blank lines before it included) and its token. */
interface Block {
  raw: string;
  token: Token;
  /** spaced: blank lines come before the token. */
  spaced: boolean;
}

/** blocksOf groups tokens into blocks, each with the blank lines before it; blank lines at the end are dropped. */
function blocksOf(tokens: Token[]): Block[] {
  const blocks: Block[] = [];
  let pending = '';
  for (const token of tokens) {
    if (token.type === 'space') {
      pending += token.raw;
      continue;
    }
    blocks.push({ raw: pending + token.raw, token, spaced: pending !== '' });
    pending = '';
  }
  return blocks;
}

/** renderAll renders a whole document; keep caches its last block too. */
function renderAll(src: string, keep: boolean): string[] {
  const tokens = lex(src);
  if (Object.keys(tokens.links).length > 0) return [cached(src, keep)];
  const blocks = blocksOf(tokens);
  return blocks.map((b, i) => cached(b.raw, keep || i < blocks.length - 1));
}

/**
 * renderBlocks renders markdown as a list of HTML blocks, one per top-level
 * block of the document. Blocks are cached by source, so while an answer
 * grows only the changed tail is parsed, highlighted and sanitized again.
 * growing says the text is a streaming answer (renderGrowing): its last
 * block is still changing, so it is rendered but not cached (each version
 * would be kept otherwise: a long code block streamed in small steps is
 * thousands of versions). A document with reference-style link definitions
 * renders as one block (a definition may be used anywhere). The blocks of a
 * finished answer (growing false) are always those of a full render.
 */
export function renderBlocks(src: string, growing = false): string[] {
  if (!src) return [];
  return growing ? renderGrowing(src) : renderAll(src, true);
}

/** renderMarkdown renders a whole document to one sanitized HTML string. */
export function renderMarkdown(src: string): string {
  return renderBlocks(src).join('');
}

/** clearMarkdownCache empties the block cache and forgets the streams (the signed-in user changed: hooks/useForgetRendered; tests). */
export function clearMarkdownCache(): void {
  cache.clear();
  cacheChars = 0;
  streams.length = 0;
  wraps.clear();
}

/** markdownCacheSize says what the block cache holds: entries, and characters of source plus HTML (for tests). */
export function markdownCacheSize(): { entries: number; chars: number } {
  return { entries: cache.size, chars: cacheChars };
}

// ---- Streaming --------------------------------------------------------------

/**
 * A growing answer being rendered. Its head, up to the last settled block,
 * is never lexed again: a block is settled once text after it has fixed how
 * markdown reads it (settles). An open fenced code block at its end is
 * grown without lexing (OpenFence).
 */
interface Stream {
  /** last: the source the last update rendered. */
  last: string;
  /** stable: the settled head of the source. */
  stable: string;
  /** settled: the HTML of the settled blocks. */
  settled: string[];
  open: OpenFence | null;
}

/**
 * An open fenced code block ending a growing answer, shown escaped and not
 * highlighted (highlighting it anew on every update cost time quadratic in
 * its length). Its code is sanitized once, in chunks, as it grows.
 */
interface OpenFence {
  /** before: the HTML of the unsettled blocks before the fence. */
  before: string[];
  /** bodyStart: where the code starts in the source (after the opening line). */
  bodyStart: number;
  /** fence: the opening backticks or tildes; a line starting with them (up to 3 spaces before) may close it. */
  fence: string;
  lang: string;
  /** lineStart: where the code's last line (maybe incomplete) starts. */
  lineStart: number;
  /** wrap: the sanitized block markup before and after the code. */
  wrap: [string, string];
  /** sealed: how many characters of code are sanitized in sealedHtml. */
  sealed: number;
  sealedHtml: string;
}

/** STREAMS is how many growing answers keep their state (one is usual). */
const STREAMS = 4;
const streams: Stream[] = [];

/** CHUNK is how many characters of an open code block are sanitized together once they are followed by more. */
const CHUNK = 1024;

/**
 * renderGrowing renders a streaming answer, reusing what its previous
 * update settled. Whatever it cannot prove settled is lexed again, and a
 * reference-style link definition anywhere means a full render (as before).
 */
function renderGrowing(text: string): string[] {
  const src = text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text; // as marked reads it: offsets then match its tokens
  const s = streamFor(src);
  const grew = src.startsWith(s.last);
  if (s.open && grew) {
    const html = growFence(s.open, src);
    if (html !== null) {
      s.last = src;
      return [...s.settled, ...s.open.before, html];
    }
  }
  return relex(s, src, grew);
}

/**
 * streamFor finds the stream src continues (its text so far, src.startsWith
 * its last), or starts one. A stream whose settled head alone src starts
 * with is not reused: its blocks were settled on the text after that head,
 * which another answer (a regenerated one) need not have.
 */
function streamFor(src: string): Stream {
  let best: Stream | undefined;
  for (const s of streams) {
    if (src.startsWith(s.last) && (!best || s.last.length > best.last.length)) best = s;
  }
  if (best) streams.splice(streams.indexOf(best), 1);
  const s = best ?? { last: '', stable: '', settled: [], open: null };
  streams.push(s);
  if (streams.length > STREAMS) streams.shift();
  return s;
}

/** relex lexes what follows the settled head, settles what it can and renders the rest. */
function relex(s: Stream, src: string, grew: boolean): string[] {
  const prev = s.open;
  s.open = null;
  s.last = src;
  const tail = src.slice(s.stable.length);
  const tokens = lex(tail);
  if (Object.keys(tokens.links).length > 0) {
    streams.splice(streams.indexOf(s), 1);
    return renderAll(src, false);
  }
  const blocks = blocksOf(tokens);
  const n = settles(blocks, tail);
  let len = s.stable.length;
  for (const b of blocks.slice(0, n)) {
    s.settled.push(cached(b.raw, true));
    len += b.raw.length;
  }
  s.stable = src.slice(0, len);
  const rest = blocks.slice(n);
  const html = rest.map((b, i) => (i < rest.length - 1 ? cached(b.raw, true) : renderLast(b)));
  s.open = openFence(rest, src, len, grew ? prev : null);
  if (s.open) s.open.before = html.slice(0, -1);
  return [...s.settled, ...html];
}

/**
 * settles says how many leading blocks no later text can change. A block
 * is settled once another block follows it and
 *   - if it is a paragraph, a blank line comes between (a paragraph may
 *     become a table's header, or take in an indented or clipped line);
 *   - unless it is a heading, a rule, math or code, the next block's first
 *     line is complete ("1. a", a blank line, then "2" may yet be "2. b",
 *     the same list);
 *   - unless it is math, it has no line starting with $$ (a display-math
 *     block closed later takes in everything up to its closing $$).
 * Link definitions are handled before (a full render).
 */
function settles(blocks: Block[], tail: string): number {
  let at = 0;
  for (let i = 0; i < blocks.length - 1; i++) {
    const { raw, token } = blocks[i]!;
    const next = blocks[i + 1]!;
    const nextStart = at + raw.length + (next.raw.length - next.token.raw.length);
    const lineDone = tail.indexOf('\n', nextStart) >= 0;
    if (token.type === 'paragraph' && !next.spaced) return i;
    if (!['heading', 'hr', 'mathBlock', 'code'].includes(token.type) && !lineDone) return i;
    if (token.type !== 'mathBlock' && /(?:^|\n)\$\$/.test(raw)) return i;
    at += raw.length;
  }
  return Math.max(0, blocks.length - 1);
}

/** renderLast renders the unsettled last block; a code block is shown unhighlighted. */
function renderLast(b: Block): string {
  if (b.token.type !== 'code') return cached(b.raw, false);
  return sanitize(plainCode(b.token as Tokens.Code));
}

/** plainCode is a code block's markup with its code escaped, not highlighted. */
function plainCode(token: Tokens.Code): string {
  return codeBlockHtml(fenceLang(token.lang), escapeHtml(token.text).replace(/\n$/, ''));
}

/**
 * openFence returns the state for growing the last block without lexing
 * when it is a fenced code block still open: it starts its line, its
 * opening line is complete, it runs to the end of the source, its code is
 * what marked makes of the rest of the source, and no $$ before it could
 * open math that a $$ in the code would close. prev, the same block's state
 * at the previous update, keeps its sanitized chunks.
 */
function openFence(rest: Block[], src: string, stableLen: number, prev: OpenFence | null): OpenFence | null {
  const last = rest.at(-1);
  if (!last || last.token.type !== 'code') return null;
  const token = last.token as Tokens.Code;
  const start = src.length - token.raw.length;
  const opening = /^(`{3,}|~{3,})[^\n]*\n/.exec(token.raw);
  if (!opening || !src.endsWith(token.raw) || src.slice(stableLen, start).includes('$$')) return null;
  const bodyStart = start + opening[0].length;
  const body = src.slice(bodyStart);
  if (shownCode(body) !== token.text.replace(/\n$/, '')) return null; // closed, or not as expected
  const lang = fenceLang(token.lang);
  const wrap = codeWrap(lang);
  if (!wrap) return null;
  const fence = opening[1]!;
  const lineStart = src.lastIndexOf('\n') + 1;
  if (prev && prev.bodyStart === bodyStart && prev.fence === fence && prev.lang === lang) return { ...prev, lineStart };
  return { before: [], bodyStart, fence, lang, lineStart, wrap, sealed: 0, sealedHtml: '' };
}

/** shownCode is the code of an open fence as shown: what follows its opening line, less one final newline. */
function shownCode(body: string): string {
  return body.endsWith('\n') ? body.slice(0, -1) : body;
}

/**
 * growFence renders an open code block grown by appended text, or returns
 * null when a line since the last update may close it (the caller lexes
 * again). Only the new lines are looked at, and only the code after the
 * last sealed chunk is sanitized.
 */
function growFence(f: OpenFence, src: string): string | null {
  let at = f.lineStart;
  for (;;) {
    if (mayClose(src, at, f.fence)) return null;
    const nl = src.indexOf('\n', at);
    if (nl < 0) break;
    at = nl + 1;
  }
  f.lineStart = at;
  const from = () => f.bodyStart + f.sealed;
  while (src.length - from() > CHUNK + 1) {
    let end = from() + CHUNK;
    if (isHighSurrogate(src.charCodeAt(end - 1))) end--;
    f.sealedHtml += sanitize(escapeHtml(src.slice(from(), end)));
    f.sealed = end - f.bodyStart;
  }
  const rest = shownCode(src.slice(from()));
  return f.wrap[0] + f.sealedHtml + sanitize(escapeHtml(rest)) + f.wrap[1];
}

/** mayClose says whether the line at `at` starts with the fence after at most 3 spaces (marked then closes the block). */
function mayClose(src: string, at: number, fence: string): boolean {
  let i = at;
  while (i < at + 3 && src[i] === ' ') i++;
  return src.startsWith(fence, i);
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/** The sanitized markup around a code block's code, by language. */
const wraps = new Map<string, [string, string] | null>();
const MARK = '\uE000';

/** codeWrap returns a code block's sanitized markup before and after its code, or null if it cannot be split. */
function codeWrap(lang: string): [string, string] | null {
  let w = wraps.get(lang);
  if (w === undefined) {
    const parts = sanitize(codeBlockHtml(lang, MARK)).split(MARK);
    w = parts.length === 2 ? [parts[0]!, parts[1]!] : null;
    if (wraps.size >= 64) wraps.clear();
    wraps.set(lang, w);
  }
  return w;
}
