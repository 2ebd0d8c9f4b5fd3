// React bindings of the framework-free ChatApp: a context for the instance
// and useSyncExternalStore over its throttled store.

import { createContext, useContext, useSyncExternalStore } from 'react';
import type { ChatApp } from '../lib/chat';
import type { AppState } from '../lib/state';

const AppContext = createContext<ChatApp | null>(null);

/** AppProvider makes a ChatApp available to the tree. */
export const AppProvider = AppContext.Provider;

/** useApp returns the ChatApp (its actions). */
export function useApp(): ChatApp {
  const app = useContext(AppContext);
  if (!app) throw new Error('useApp outside AppProvider');
  return app;
}

/**
 * useAppState subscribes to a slice of the state. The selector must return a
 * value that keeps its identity while unchanged (a part of the state, not a
 * new object), so components re-render only when their slice changes.
 */
export function useAppState<T>(select: (s: AppState) => T): T {
  const app = useApp();
  return useSyncExternalStore(app.store.subscribe, () => select(app.store.snapshot()));
}
