// The message list's "follow the newest text" signal, for content that
// grows after the list itself rendered.

import { createContext } from 'react';

/**
 * ContentGrew is called by a rendered markdown body after it changed in the
 * DOM. Markdown renders from a deferred value, after the list's own layout
 * effect ran for the render that brought the text, so the list learns of
 * that growth here and keeps a reader who was at the bottom there. Outside a
 * list it does nothing.
 */
export const ContentGrew = createContext<() => void>(() => undefined);
