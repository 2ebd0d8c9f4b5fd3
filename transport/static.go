package transport

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"

	"chatd/transport/httperr"
)

// contentSecurityPolicy allows the app's own scripts only; styles may be
// inline (KaTeX, highlight.js), images may come from https (markdown).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data: blob: https:; font-src 'self' data:; connect-src 'self' ws: wss:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// frontEnd answers every request no route matched: a JSON 404 under /api,
// /ws and /metrics and for methods other than GET and HEAD; otherwise a file
// of the built front end, or index.html for an app path (a path whose last
// segment has no extension). Hashed files under /assets/ are cached for a
// year, everything else is revalidated.
func frontEnd(static fs.FS) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := c.Request.URL.Path
		if reserved(p) || (c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead) {
			httperr.AbortError(c, httperr.NotFound("no such route: "+c.Request.Method+" "+p))
			return
		}
		setPageHeaders(c.Writer.Header())
		if static == nil {
			placeholder(c)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+p), "/")
		if name == "" {
			name = "index.html"
		}
		if !isFile(static, name) {
			if path.Ext(name) != "" {
				httperr.AbortError(c, httperr.NotFound("no such file: "+p))
				return
			}
			name = "index.html"
		}
		if strings.HasPrefix(name, "assets/") {
			c.Header("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			c.Header("Cache-Control", "no-cache")
		}
		c.Status(http.StatusOK) // ServeFileFS sets its own status; this only clears gin's 404
		http.ServeFileFS(c.Writer, c.Request, static, name)
	}
}

// reserved reports whether p belongs to the server, never to the app.
func reserved(p string) bool {
	for _, prefix := range []string{"/api", "/ws", "/metrics"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}

func isFile(fsys fs.FS, name string) bool {
	info, err := fs.Stat(fsys, name)
	return err == nil && info.Mode().IsRegular()
}

func setPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// placeholderPage is served when the binary was built without the front end.
const placeholderPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chatd: front end not built</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.5">
<h1>chatd is running</h1>
<p>The web front end was not built into this binary, so there is no page to show yet.
The API answers under <code>/api</code> (see docs/api.md).</p>
<p>To get the app, build it and the server together with <code>make build</code> (or <code>make run</code>),
or build it by hand (<code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>) and start the server
with <code>CHATD_STATIC_DIR=frontend/dist</code>.</p>
</body></html>
`

func placeholder(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(placeholderPage))
}
