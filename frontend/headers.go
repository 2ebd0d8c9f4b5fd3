package frontend

import "net/http"

// contentSecurityPolicy is sent with every HTML page: nginx.conf's policy
// (a deployment without the proxy gets the same), but for connect-src and
// upgrade-insecure-requests (pageHeaders says why). Scripts and stylesheets
// only from this origin; inline style attributes are allowed because
// rendered math (KaTeX) positions glyphs with style="...", while
// style-src-elem keeps inline <style> elements out (browsers without CSP
// level 3 use style-src); the app injects none. connect-src is only 'self':
// under CSP Level 3 it also matches ws: and wss: URLs of the page's own
// host and port (Chromium, Firefox, Safari 15.4+), so the WebSocket works on
// whatever host and port the page was served from (behind a proxy too)
// without naming one, while a socket to any other host is refused; "ws:
// wss:" would let an injected script send data to any host. Images: this
// origin, data: (the favicon) and https:, because a markdown image in an
// answer may be shown; the client never creates that <img> by itself, only
// when the reader clicks the placeholder that names its host
// (src/lib/images.ts). A CSP cannot follow a per-image choice; a same-origin
// image proxy would be the stricter design. No workers from blob: (the app
// starts none) and no <base> element (base-uri 'none').
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; " +
	"style-src 'self' 'unsafe-inline'; style-src-elem 'self'; img-src 'self' https: data:; font-src 'self' data:; " +
	"connect-src 'self'; worker-src 'self'; manifest-src 'self'; media-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// pageHeaders are the headers every HTML page gets: those nginx.conf adds to
// every answer, so a deployment without the proxy is as strict (chatd adds
// X-Content-Type-Options: nosniff to every file it serves). Two belong to
// whoever terminates TLS and are left to it: Strict-Transport-Security
// (chatd itself speaks plain HTTP, and includeSubDomains is a decision about
// the whole domain), and the CSP's upgrade-insecure-requests (a page served
// over http on localhost or a LAN address would have its own scripts and
// stylesheets moved to an https that is not there). The CSP's connect-src
// cannot name the public wss:// host the proxy names (see above).
var pageHeaders = [...]struct{ name, value string }{
	{"Content-Security-Policy", contentSecurityPolicy},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"},
}

// setPageHeaders adds the headers every HTML page gets (pageHeaders).
func setPageHeaders(hd http.Header) {
	for _, h := range pageHeaders {
		hd.Set(h.name, h.value)
	}
}
