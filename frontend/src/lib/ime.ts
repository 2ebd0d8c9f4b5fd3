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
  return e.nativeEvent.isComposing || e.keyCode === 229;
}
