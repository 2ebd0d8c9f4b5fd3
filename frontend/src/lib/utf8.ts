// Byte arithmetic for the protocol's seq, which counts UTF-8 bytes.

const encoder = new TextEncoder();
// ignoreBOM: a U+FEFF the answer starts a cut or resume overlap with is
// text, counted by seq; the default decoder drops it, losing 3 bytes.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** utf8Length returns the number of UTF-8 bytes of s, without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** utf8Suffix returns the part of s after its first `bytes` UTF-8 bytes. */
export function utf8Suffix(s: string, bytes: number): string {
  if (bytes <= 0) return s;
  const all = encoder.encode(s);
  return decoder.decode(all.subarray(Math.min(bytes, all.length)));
}

/** utf8Prefix returns the first `bytes` UTF-8 bytes of s (a prefix on a character boundary). */
export function utf8Prefix(s: string, bytes: number): string {
  if (bytes <= 0) return '';
  const all = encoder.encode(s);
  return bytes >= all.length ? s : decoder.decode(all.subarray(0, bytes));
}
