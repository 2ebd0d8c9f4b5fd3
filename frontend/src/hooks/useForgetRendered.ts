// What the page rendered of a user's messages, forgotten with that user.

import { useEffect } from 'react';
import { clearMarkdownCache } from '../lib/markdown';
import { useAppState } from './app';

/**
 * useForgetRendered empties the markdown block cache when the user signed in
 * changes: a sign-out (here or in another tab, an expiry, a deleted account)
 * or another user taking the tab's place. Without it the rendered blocks of
 * the previous user's answers stayed in memory for the next one.
 */
export function useForgetRendered(): void {
  const userId = useAppState((s) => s.session.user?.id ?? null);
  useEffect(() => () => clearMarkdownCache(), [userId]);
}
