// Markdown for model output: the seed's marked + marked-highlight +
// highlight.js settings (breaks on, language from the fence, plaintext when
// unknown, escaped and unhighlighted without a language), hardened: raw HTML
// is shown as text, links and images are filtered, and the HTML is passed
// through DOMPurify. Rendering works block by block with a cache, so a growing
// answer only re-renders its last block.

import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/common';
import dockerfile from 'highlight.js/lib/languages/dockerfile';
import nginx from 'highlight.js/lib/languages/nginx';
import powershell from 'highlight.js/lib/languages/powershell';
import { Marked, type Tokens } from 'marked';
import { markedHighlight } from 'marked-highlight';
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

/** safeHref returns the URL if it is http(s), mailto or relative, else null. */
export function safeHref(href: string): string | null {
  const probe = href.replace(/[\u0000-\u0020\u007f-\u009f]/g, '').toLowerCase();
  const scheme = /^([a-z][a-z0-9+.-]*):/.exec(probe);
  if (scheme) return ['http', 'https', 'mailto'].includes(scheme[1]!) ? href : null;
  if (probe.startsWith('//')) return 'https:' + href.trim();
  if (/&#|&[a-z]+;/i.test(probe)) return null; // entity tricks: not worth the risk
  return href;
}

function isHttpsUrl(src: string): boolean {
  return /^https:\/\/[^\s]+$/i.test(src.trim());
}

function createMarked(): Marked {
  const md = new Marked(
    markedHighlight({
      langPrefix: 'hljs language-',
      highlight(code, lang) {
        if (!code && !lang) return '';
        if (!lang) return code;
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
      code(token: Tokens.Code) {
        const lang = fenceLang(token.lang);
        const body = (token.escaped ? token.text : escapeHtml(token.text)).replace(/\n$/, '');
        const cls = lang ? `hljs language-${escapeHtml(lang)}` : 'hljs';
        const label = escapeHtml(lang || 'text');
        return (
          `<div class="code-block"><div class="code-head"><span class="code-lang">${label}</span>` +
          `<button type="button" class="code-copy" aria-label="Copy ${label} code">Copy</button></div>` +
          `<pre><code class="${cls}">${body}\n</code></pre></div>\n`
        );
      },
      // A task item's box is a picture with its state in words, not an
      // <input>: inputs stay forbidden (sanitize), and marked drops the
      // [x] / [ ] text, so without this a done item and an open one look
      // and read the same.
      checkbox(token: Tokens.Checkbox) {
        const [glyph, label] = token.checked ? ['\u2611', 'done'] : ['\u2610', 'not done'];
        return `<span class="task-box${token.checked ? ' task-done' : ''}" role="img" aria-label="${label}">${glyph}</span> `;
      },
      link(token: Tokens.Link) {
        const inner = this.parser.parseInline(token.tokens);
        const href = safeHref(token.href);
        if (href === null) return inner;
        const title = token.title ? ` title="${escapeHtml(token.title)}"` : '';
        return `<a href="${escapeHtml(href)}"${title} target="_blank" rel="noopener noreferrer">${inner}</a>`;
      },
      // A remote image becomes a button naming its host: nothing is fetched
      // until the reader clicks it (lib/images.ts makes the <img> then).
      image(token: Tokens.Image) {
        const host = isHttpsUrl(token.href) ? imageHost(token.href) : null;
        if (!host) return escapeHtml(token.text);
        const alt = token.text ? `: ${escapeHtml(token.text)}` : '';
        return (
          `<button type="button" class="remote-image" data-src="${escapeHtml(token.href.trim())}" data-alt="${escapeHtml(token.text)}"` +
          ` title="Load ${escapeHtml(token.href.trim())}">Image from ${escapeHtml(host)}${alt}. Click to load it from that site.</button>`
        );
      },
    },
  });
  return md;
}

const md = createMarked();

let purifier: ReturnType<typeof DOMPurify> | null = null;

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
  });
  purifier = p;
  return p;
}

/** sanitize passes HTML through DOMPurify with this app's policy. */
export function sanitize(html: string): string {
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
  const html = sanitize(md.parse(raw, { async: false }));
  if (keep) remember(raw, html);
  return html;
}

/**
 * renderBlocks renders markdown as a list of HTML blocks, one per top-level
 * block of the document. Blocks are cached by source, so while an answer
 * grows only the changed tail is parsed, highlighted and sanitized again.
 * growing says the text is a streaming answer: its last block is still
 * changing, so it is rendered but not cached (each version would be kept
 * otherwise: a long code block streamed in small steps is thousands of
 * versions). A document with reference-style link definitions renders as
 * one block (a definition may be used anywhere).
 */
export function renderBlocks(src: string, growing = false): string[] {
  if (!src) return [];
  const tokens = md.lexer(src);
  if (Object.keys(tokens.links).length > 0) return [cached(src, !growing)];
  const raws: string[] = [];
  let pending = '';
  for (const token of tokens) {
    pending += token.raw;
    if (token.type === 'space') continue;
    raws.push(pending);
    pending = '';
  }
  if (pending.trim() && raws.length === 0) raws.push(pending);
  return raws.map((raw, i) => cached(raw, !growing || i < raws.length - 1));
}

/** renderMarkdown renders a whole document to one sanitized HTML string. */
export function renderMarkdown(src: string): string {
  return renderBlocks(src).join('');
}

/** clearMarkdownCache empties the block cache (the signed-in user changed: hooks/useForgetRendered; tests). */
export function clearMarkdownCache(): void {
  cache.clear();
  cacheChars = 0;
}

/** markdownCacheSize says what the block cache holds: entries, and characters of source plus HTML (for tests). */
export function markdownCacheSize(): { entries: number; chars: number } {
  return { entries: cache.size, chars: cacheChars };
}
