// Character references in the parts of markdown that marked hands over as
// written: link and image destinations, titles and image descriptions.
// CommonMark decodes them (&amp; is &, &#x61; is a), so the renderer decodes
// them once and escapes the result once; escaping them as written made
// ?a=1&amp;b=2 a link to ?a=1&amp;b=2 (a parameter "amp;b").

/** A reference CommonMark decodes: decimal (1-7 digits), hex (1-6) or named, with its semicolon. */
const REFERENCE = /&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z][A-Za-z0-9]{1,31}));/g;

/** NAMED_CACHE bounds the named references remembered (a handful are ever used). */
const NAMED_CACHE = 256;
const named = new Map<string, string | null>();
let probe: HTMLElement | null = null;

/**
 * decodeEntities returns s with its character references decoded, as
 * CommonMark reads them in a link destination or title: a number that is
 * no Unicode scalar value (or is 0) becomes U+FFFD, and an unknown name,
 * or one without its semicolon, stays as written.
 */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(REFERENCE, (ref: string, dec?: string, hex?: string, name?: string) => {
    if (dec !== undefined) return fromCodePoint(Number.parseInt(dec, 10));
    if (hex !== undefined) return fromCodePoint(Number.parseInt(hex, 16));
    return namedReference(name!) ?? ref;
  });
}

/** fromCodePoint is the character for n, or U+FFFD for 0, a surrogate or a number past Unicode. */
function fromCodePoint(n: number): string {
  if (n === 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return '\uFFFD';
  return String.fromCodePoint(n);
}

/**
 * namedReference returns what &name; stands for, or null if it is no HTML
 * entity. The browser's own table decides (HTML knows over 2,000 names):
 * the reference alone, its name letters and digits only, is parsed as an
 * attribute value in a document that has no window, so nothing in it can
 * run or load. In an attribute a name is decoded only whole (&notit; is not
 * &not followed by "it;", as it would be in text).
 */
function namedReference(name: string): string | null {
  const known = named.get(name);
  if (known !== undefined) return known;
  probe ??= document.implementation.createHTMLDocument('').createElement('span');
  probe.innerHTML = `<i title="&${name};"></i>`;
  const value = probe.firstElementChild?.getAttribute('title') ?? null;
  const decoded = value === null || value === `&${name};` ? null : value;
  if (named.size >= NAMED_CACHE) named.clear();
  named.set(name, decoded);
  return decoded;
}
