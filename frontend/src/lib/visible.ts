// Whether a text shows anything: the rule the server applies to a message
// (hub/protocol/visible.go, HasVisible). A message of white space, format
// characters (U+200B, U+FEFF) or controls (U+0085) alone is not sent: the
// server refuses it ("content is required"), and one it took would show a
// blank bubble and be sent to the model.

/**
 * VISIBLE matches a character that shows: any but white space, controls,
 * format characters, surrogates, default-ignorable ones (the Hangul
 * fillers U+115F, U+1160, U+3164, U+FFA0, variation selectors, U+034F)
 * and U+2800 braille blank. It names what does not show, as the server
 * does, so that a character one side's Unicode tables do not know yet
 * (the server's are older than the browser's) counts as showing on both.
 */
const VISIBLE = /[^\p{White_Space}\p{Cc}\p{Cf}\p{Cs}\p{Default_Ignorable_Code_Point}\u2800]/u;

/** hasVisible says whether text holds a character that shows (the server's rule for a message's content). */
export function hasVisible(text: string): boolean {
  return VISIBLE.test(text);
}
