// Package transport composes the HTTP server: gin in release mode, request
// ids and one JSON log line per request, JSON panics and 404/405s, trusted
// proxies, a request body limit, the REST routes (transport/auth,
// transport/api), Prometheus metrics, the live routes other packages
// register through RouterOptions.Register (transport/ws, transport/sse), and
// the web front end with a single-page-app fallback that never swallows
// /api or /ws.
package transport
