// Character references in the parts of markdown that marked hands over as
// written: link and image destinations, titles and image descriptions.
// CommonMark decodes them (&amp; is &, &#x61; is a), so the renderer decodes
// them once and escapes the result once; escaping them as written made
// ?a=1&amp;b=2 a link to ?a=1&amp;b=2 (a parameter "amp;b").

/** A reference CommonMark decodes: decimal (1-7 digits), hex (1-6) or named, with its semicolon. */
const REFERENCE = /&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z][A-Za-z0-9]{1,31}));/g;

/**
 * known holds every name found to be an HTML entity, with its value: never
 * evicted, and bounded by HTML itself (some 2,231 names). unknown holds
 * names that are none, up to UNKNOWN_CACHE, then starts again: a message
 * can hold any number of those. Emptying every name when a cache filled
 * made a list of many distinct names, re-rendered at every token while it
 * streams, parse each of them again at every token.
 */
const known = new Map<string, string>();
const unknown = new Set<string>();
const UNKNOWN_CACHE = 1024;
let probe: HTMLElement | null = null;

/**
 * decodeEntities returns s with its character references decoded, as
 * CommonMark reads them in a link destination or title: a number that is
 * no Unicode scalar value (or is 0) becomes U+FFFD, and an unknown name,
 * or one without its semicolon, stays as written.
 */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  learnNames(s);
  return s.replace(REFERENCE, (ref: string, dec?: string, hex?: string, name?: string) => {
    if (dec !== undefined) return fromCodePoint(Number.parseInt(dec, 10));
    if (hex !== undefined) return fromCodePoint(Number.parseInt(hex, 16));
    return known.get(name!) ?? ref;
  });
}

/** fromCodePoint is the character for n, or U+FFFD for 0, a surrogate or a number past Unicode. */
function fromCodePoint(n: number): string {
  if (n === 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return '\uFFFD';
  return String.fromCodePoint(n);
}

/** learnNames looks up, in one parse, the names referenced in s not yet known to be an entity or not. */
function learnNames(s: string): void {
  const names = new Set<string>();
  for (const m of s.matchAll(REFERENCE)) {
    const name = m[3];
    if (name !== undefined && !known.has(name) && !unknown.has(name)) names.add(name);
  }
  if (names.size === 0) return;
  const values = namedReferences([...names]);
  [...names].forEach((name, i) => remember(name, values[i] ?? null));
}

/** remember keeps what &name; stands for (null: no entity); the names that are none are capped. */
function remember(name: string, value: string | null): void {
  if (value !== null) {
    known.set(name, value);
    return;
  }
  if (unknown.size >= UNKNOWN_CACHE) unknown.clear();
  unknown.add(name);
}

/**
 * namedReferences returns what each &name; stands for, or null for one
 * that is no HTML entity. The browser's own table decides (HTML knows over
 * 2,000 names): each reference alone, its name letters and digits only, is
 * parsed as an attribute value in a document that has no window, so
 * nothing in it can run or load; all of them in one parse. In an attribute
 * a name is decoded only whole (&notit; is not &not followed by "it;", as
 * it would be in text).
 */
function namedReferences(names: string[]): Array<string | null> {
  probe ??= document.implementation.createHTMLDocument('').createElement('span');
  probe.innerHTML = names.map((name) => `<i title="&${name};"></i>`).join('');
  const values = [...probe.children].map((el, i) => {
    const value = el.getAttribute('title');
    return value === null || value === `&${names[i]};` ? null : value;
  });
  probe.replaceChildren();
  return values;
}
