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
