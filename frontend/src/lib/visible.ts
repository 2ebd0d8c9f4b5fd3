// Whether a text shows anything: the rule the server applies to a message
// (hub/protocol/visible.go, HasVisible). A message of white space, format
// characters (U+200B, U+FEFF) or controls (U+0085) alone is not sent: the
// server refuses it ("content is required"), and one it took would show a
// blank bubble and be sent to the model.

/**
 * VISIBLE matches a character that shows: a letter, mark, number,
 * punctuation, symbol or private-use character that is not default
 * ignorable (the Hangul fillers U+115F, U+1160, U+3164, U+FFA0, variation
 * selectors, U+034F) nor U+2800 braille blank.
 */
const VISIBLE = /(?![\u2800\p{Default_Ignorable_Code_Point}])[\p{L}\p{M}\p{N}\p{P}\p{S}\p{Co}]/u;

/** hasVisible says whether text holds a character that shows (the server's rule for a message's content). */
export function hasVisible(text: string): boolean {
  return VISIBLE.test(text);
}
