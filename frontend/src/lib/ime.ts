// Keys that belong to an input method (IME): the Enter that confirms a
// Japanese or Chinese conversion must not also send or save.

/** The key events isImeKey reads: a React keyboard event is one. */
export interface ImeKeyEvent {
  keyCode: number;
  nativeEvent: { isComposing: boolean };
}

/**
 * isImeKey says whether a keydown is the input method's (it confirms or
 * cancels a composition) rather than the user's command: the event says it
 * is composing, or carries keyCode 229, which Safari gives the Enter that
 * confirms a conversion after it has fired compositionend (isComposing is
 * false by then).
 */
export function isImeKey(e: ImeKeyEvent): boolean {
  return isImeNativeKey({ keyCode: e.keyCode, isComposing: e.nativeEvent.isComposing });
}

/**
 * isImeNativeKey is isImeKey for a DOM KeyboardEvent (a document listener's):
 * the Escape that cancels a conversion is the input method's, not a request
 * to close a dialog or an edit.
 */
export function isImeNativeKey(e: { keyCode: number; isComposing: boolean }): boolean {
  return e.isComposing || e.keyCode === 229;
}
