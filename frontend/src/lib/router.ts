// The app's few routes, in the URL path (deep links like /c/<id> are served
// index.html by the Go handler's SPA fallback).

/** Route is a page of the app. */
export type Route =
  | { name: 'login' }
  | { name: 'register' }
  | { name: 'chat'; conversationId: string | null };

const idPattern = /^[0-9a-f]{24}$/;

/** parseRoute maps a path to a route; unknown paths show a new chat. */
export function parseRoute(path: string): Route {
  if (path === '/login') return { name: 'login' };
  if (path === '/register') return { name: 'register' };
  const m = /^\/c\/([^/]+)\/?$/.exec(path);
  if (m && idPattern.test(m[1]!)) return { name: 'chat', conversationId: m[1]! };
  return { name: 'chat', conversationId: null };
}

/** routePath is the path of a route. */
export function routePath(r: Route): string {
  switch (r.name) {
    case 'login':
      return '/login';
    case 'register':
      return '/register';
    case 'chat':
      return r.conversationId ? `/c/${r.conversationId}` : '/';
  }
}

/**
 * DRAWER_ENTRY is the state of the history entry that the narrow screens'
 * open drawer (the sidebar over the chat) adds, at the same URL: Back
 * closes the drawer and goes nowhere else (App.tsx, useDrawerHistory). A
 * page opened from the drawer takes that entry's place (ChatApp.navigate):
 * Back from it goes to the page the drawer was opened on.
 */
export const DRAWER_ENTRY = { chatdDrawer: true } as const;

/** isDrawerEntry reports whether a history state is DRAWER_ENTRY's. */
export function isDrawerEntry(state: unknown): boolean {
  return typeof state === 'object' && state !== null && (state as { chatdDrawer?: unknown }).chatdDrawer === true;
}
